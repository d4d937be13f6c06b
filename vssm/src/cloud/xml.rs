//! XML reader for AWS query-API responses, on top of `roxmltree`.
//!
//! AWS answers are hostile input. `roxmltree` was chosen over `quick-xml`
//! because it checks well-formedness itself (matching end tags, one root,
//! namespaces, entity syntax) where `quick-xml` is a lenient tokenizer that
//! leaves those checks to the caller; it has no `unsafe`, one small dependency
//! (`memchr`), refuses any DTD by default (`allow_dtd: false`, so no entity
//! expansion and no external entities) and can cap the node count. This
//! module adds what it lacks: an input size limit, a UTF-8 check, and a depth
//! limit applied while copying the tree into [`Element`]s (elements and text
//! only; attributes, comments and processing instructions are dropped,
//! namespace prefixes removed).

/// Largest document accepted, in bytes.
pub const MAX_INPUT: usize = 4 * 1024 * 1024;
/// Deepest element nesting accepted (AWS responses need about 8).
pub const MAX_DEPTH: usize = 64;
/// Most nodes (elements, text, comments…) accepted in one document.
pub const MAX_NODES: u32 = 400_000;

/// Why a response was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The document is larger than [`MAX_INPUT`].
    #[error("XML: document too large")]
    TooLarge,
    /// The document is not UTF-8 (AWS always answers in UTF-8).
    #[error("XML: not UTF-8")]
    NotUtf8,
    /// Elements nest deeper than [`MAX_DEPTH`].
    #[error("XML: nesting too deep")]
    TooDeep,
    /// Not well-formed, a DTD, an unknown entity or more than [`MAX_NODES`] nodes.
    #[error("XML: {0}")]
    Syntax(String),
}

/// One element: local name, child elements and direct text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Local name (prefix removed).
    pub name: String,
    /// Child elements in document order.
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

/// Parses a complete document into its root element.
pub fn parse(input: &[u8]) -> Result<Element, XmlError> {
    if input.len() > MAX_INPUT {
        return Err(XmlError::TooLarge);
    }
    let text = std::str::from_utf8(input).map_err(|_| XmlError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let options = roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: MAX_NODES, ..Default::default() };
    let document =
        roxmltree::Document::parse_with_options(text, options).map_err(|e| XmlError::Syntax(e.to_string()))?;
    convert(document.root_element(), 1)
}

/// Copies `node` and its subtree; recursion is bounded by [`MAX_DEPTH`].
fn convert(node: roxmltree::Node<'_, '_>, depth: usize) -> Result<Element, XmlError> {
    if depth > MAX_DEPTH {
        return Err(XmlError::TooDeep);
    }
    let mut element = Element { name: node.tag_name().name().to_string(), ..Default::default() };
    for child in node.children() {
        if child.is_element() {
            element.children.push(convert(child, depth + 1)?);
        } else if let Some(text) = child.is_text().then(|| child.text()).flatten() {
            element.text.push_str(text);
        }
    }
    Ok(element)
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
    fn byte_order_mark_and_default_namespace_are_accepted() {
        let doc = "\u{feff}<R xmlns=\"https://ec2.amazonaws.com/doc/2016-11-15/\"><a>1</a></R>";
        let root = parse(doc.as_bytes()).unwrap();
        assert_eq!((root.name.as_str(), root.child_text("a")), ("R", Some("1")));
    }

    #[test]
    fn rejects_hostile_or_broken_documents() {
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        for bad in [
            &b"<a><b></a></b>"[..],
            b"<a>",
            b"<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
            b"<!DOCTYPE a SYSTEM \"file:///etc/passwd\"><a/>",
            b"<a>&unknown;</a>",
            b"<a>&#0;</a>",
            b"<a></a><b></b>",
            b"text<a/>",
            b"<a>\xff</a>",
            b"",
            b"<a attr=\"unterminated></a>",
            b"<p:a>undeclared prefix</p:a>",
            deep.as_bytes(),
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse(deep.as_bytes()), Err(XmlError::TooDeep));
        assert_eq!(parse(b"<a>\xff</a>"), Err(XmlError::NotUtf8));
    }

    #[test]
    fn billion_laughs_is_refused_as_a_dtd() {
        let doc = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<lolz>&lol3;</lolz>"#;
        assert!(matches!(parse(doc), Err(XmlError::Syntax(_))));
    }

    #[test]
    fn size_and_node_count_are_bounded() {
        let mut huge = b"<a>".to_vec();
        huge.resize(MAX_INPUT + 1, b'x');
        assert_eq!(parse(&huge), Err(XmlError::TooLarge));
        // Within the size limit but more nodes than allowed.
        let many = format!("<a>{}</a>", "<b/>".repeat(MAX_NODES as usize + 1));
        assert!(many.len() <= MAX_INPUT);
        assert!(matches!(parse(many.as_bytes()), Err(XmlError::Syntax(_))));
    }

    #[test]
    fn very_deep_nesting_fails_without_overflowing_the_stack() {
        let depth = 200_000;
        let doc = "<a>".repeat(depth) + &"</a>".repeat(depth);
        assert!(parse(doc.as_bytes()).is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn tag_soup_never_panics(parts in proptest::collection::vec(
            proptest::sample::select(vec!["<a>", "</a>", "<b/>", "&amp;", "&x;", "<![CDATA[", "]]>", "<!--", "-->",
                                          "<?x", "?>", "<!DOCTYPE a>", "t", " ", "\"", "=", "xmlns:p='u'", "<p:c>"]),
            0..64)) {
            let _ = parse(parts.concat().as_bytes());
        }
    }
}
