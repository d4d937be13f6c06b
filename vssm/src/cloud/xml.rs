//! Minimal, defensive XML reader for AWS query-API responses: elements and text only
//! (attributes are skipped, namespace prefixes dropped), no DTDs/entities beyond the five
//! predefined ones and numeric references, with size, depth and node-count limits.

use std::fmt;

pub const MAX_INPUT: usize = 4 * 1024 * 1024;
pub const MAX_DEPTH: usize = 64;
pub const MAX_ELEMENTS: usize = 200_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError(pub String);

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "XML: {}", self.0)
    }
}

impl std::error::Error for XmlError {}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Local name (prefix removed).
    pub name: String,
    pub children: Vec<Element>,
    /// Concatenated character data directly inside this element (untrimmed).
    pub text: String,
}

impl Element {
    /// First direct child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Direct children with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Trimmed text of the first direct child with this name.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    /// Follows a path of direct children.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        names.iter().try_fold(self, |e, n| e.child(n))
    }

    /// First descendant (depth-first, pre-order, including self) with this name.
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }
}

fn err<T>(m: &str) -> Result<T, XmlError> {
    Err(XmlError(m.to_string()))
}

fn local_name(qname: &str) -> &str {
    qname.rsplit(':').next().unwrap_or(qname)
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 256 && n.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

fn decode_text(raw: &str, out: &mut String) -> Result<(), XmlError> {
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after.find(';').filter(|e| *e <= 10).ok_or_else(|| XmlError("bad entity".into()))?;
        let ent = &after[..end];
        let c = match ent {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(h) = ent.strip_prefix("#x").or_else(|| ent.strip_prefix("#X")) {
                    u32::from_str_radix(h, 16).ok()
                } else if let Some(d) = ent.strip_prefix('#') {
                    d.parse::<u32>().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32).ok_or_else(|| XmlError(format!("unknown entity &{ent};")))?
            }
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(())
}

/// Parses a complete document into its root element.
pub fn parse(input: &[u8]) -> Result<Element, XmlError> {
    if input.len() > MAX_INPUT {
        return err("document too large");
    }
    let s = std::str::from_utf8(input).map_err(|_| XmlError("not UTF-8".into()))?;
    let s = s.strip_prefix('\u{feff}').unwrap_or(s);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    let mut pos = 0usize;
    while pos < s.len() {
        let rest = &s[pos..];
        if !rest.starts_with('<') {
            let end = rest.find('<').unwrap_or(rest.len());
            let raw = &rest[..end];
            match stack.last_mut() {
                Some(top) => decode_text(raw, &mut top.text)?,
                None if raw.trim().is_empty() => {}
                None => return err("text outside the root element"),
            }
            pos += end;
            continue;
        }
        if let Some(r) = rest.strip_prefix("<?") {
            let end = r.find("?>").ok_or_else(|| XmlError("unterminated processing instruction".into()))?;
            pos += 2 + end + 2;
        } else if let Some(r) = rest.strip_prefix("<!--") {
            let end = r.find("-->").ok_or_else(|| XmlError("unterminated comment".into()))?;
            pos += 4 + end + 3;
        } else if let Some(r) = rest.strip_prefix("<![CDATA[") {
            let end = r.find("]]>").ok_or_else(|| XmlError("unterminated CDATA".into()))?;
            match stack.last_mut() {
                Some(top) => top.text.push_str(&r[..end]),
                None => return err("CDATA outside the root element"),
            }
            pos += 9 + end + 3;
        } else if rest.starts_with("<!") {
            return err("DTDs and declarations are not accepted");
        } else if let Some(r) = rest.strip_prefix("</") {
            let end = r.find('>').ok_or_else(|| XmlError("unterminated end tag".into()))?;
            let name = r[..end].trim();
            let el = stack.pop().ok_or_else(|| XmlError("unexpected end tag".into()))?;
            if local_name(name) != el.name {
                return Err(XmlError(format!("mismatched end tag </{name}> for <{}>", el.name)));
            }
            match stack.last_mut() {
                Some(parent) => parent.children.push(el),
                None => root = Some(el),
            }
            pos += 2 + end + 1;
        } else {
            // Start tag: name, then attributes (skipped, quotes respected), then `>` or `/>`.
            let r = &rest[1..];
            let name_end = r.find(|c: char| c.is_whitespace() || c == '/' || c == '>').unwrap_or(r.len());
            let qname = &r[..name_end];
            if !valid_name(qname) {
                return Err(XmlError(format!("bad element name {qname:?}")));
            }
            if root.is_some() {
                return err("content after the root element");
            }
            let mut i = name_end;
            let bytes = r.as_bytes();
            let self_closing = loop {
                match bytes.get(i) {
                    None => return err("unterminated start tag"),
                    Some(b'>') => break false,
                    Some(b'/') if bytes.get(i + 1) == Some(&b'>') => {
                        i += 1;
                        break true;
                    }
                    Some(b'"') | Some(b'\'') => {
                        let q = bytes[i];
                        let close =
                            r[i + 1..].find(q as char).ok_or_else(|| XmlError("unterminated attribute".into()))?;
                        i += 1 + close + 1;
                    }
                    Some(b'<') => return err("'<' in start tag"),
                    Some(_) => i += 1,
                }
            };
            count += 1;
            if count > MAX_ELEMENTS {
                return err("too many elements");
            }
            if stack.len() >= MAX_DEPTH {
                return err("nesting too deep");
            }
            let el = Element { name: local_name(qname).to_string(), ..Default::default() };
            if self_closing {
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            } else {
                stack.push(el);
            }
            pos += 1 + i + 1;
        }
    }
    if !stack.is_empty() {
        return err("unclosed elements at end of document");
    }
    root.ok_or_else(|| XmlError("no root element".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_elements_entities_and_namespaces() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<!-- c -->
<a:Root xmlns:a="urn:x" attr='v>1'>
  <Item><Id>1</Id><Name>x &amp; y &lt;z&gt; &#65;&#x42;</Name></Item>
  <Item><Id>2</Id><Empty/><Data><![CDATA[<raw>]]></Data></Item>
</a:Root>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "Root");
        let items: Vec<_> = root.children_named("Item").collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].child_text("Name"), Some("x & y <z> AB"));
        assert_eq!(items[1].child_text("Id"), Some("2"));
        assert_eq!(items[1].child_text("Empty"), Some(""));
        assert_eq!(items[1].child_text("Data"), Some("<raw>"));
        assert_eq!(root.find("Data").unwrap().text, "<raw>");
        assert_eq!(root.path(&["Item", "Id"]).unwrap().text, "1");
    }

    #[test]
    fn rejects_hostile_or_broken_documents() {
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        for bad in [
            &b"<a><b></a></b>"[..],
            b"<a>",
            b"<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
            b"<a>&unknown;</a>",
            b"<a></a><b></b>",
            b"text<a/>",
            b"<a>\xff</a>",
            b"",
            b"<a attr=\"unterminated></a>",
            deep.as_bytes(),
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
