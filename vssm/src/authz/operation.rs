//! The operations a grant can allow, and sets of them as bit masks (a set
//! check on the hot path is one AND).

use std::fmt;

/// One thing a client may do: a use of a key or a management action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// symmetric/encrypt and asymmetric/encrypt.
    Encrypt,
    /// symmetric/decrypt and asymmetric/decrypt.
    Decrypt,
    /// asymmetric/sign.
    Sign,
    /// asymmetric/verify.
    Verify,
    /// hmac/create.
    MacCreate,
    /// hmac/verify.
    MacVerify,
    /// admin/generatekey.
    Generate,
    /// admin/injectkey.
    Inject,
    /// admin/listkeys (only the keys the grant's selector matches).
    List,
    /// admin/generatebackup (cluster-wide).
    Backup,
    /// admin/restorebackup (cluster-wide).
    Restore,
    /// admin/getlogs (cluster-wide).
    GetLogs,
    /// The grant endpoints and admin/setpolicy (cluster-wide).
    ManageGrants,
    /// symmetric/generatedatakey: a new data key wrapped under the key (a
    /// use; new operations go last, see SECURITY.md on rolling upgrades).
    GenerateDataKey,
    /// admin/rotatekey, admin/setrotation, admin/setmindecryptionversion.
    Rotate,
    /// admin/disablekey and admin/enablekey.
    Disable,
    /// admin/scheduledeletion, admin/canceldeletion, admin/trimversions.
    Delete,
}

impl Operation {
    /// Every operation, in the order listings use.
    pub const ALL: [Operation; 17] = [
        Operation::Encrypt,
        Operation::Decrypt,
        Operation::Sign,
        Operation::Verify,
        Operation::MacCreate,
        Operation::MacVerify,
        Operation::Generate,
        Operation::Inject,
        Operation::List,
        Operation::Backup,
        Operation::Restore,
        Operation::GetLogs,
        Operation::ManageGrants,
        Operation::GenerateDataKey,
        Operation::Rotate,
        Operation::Disable,
        Operation::Delete,
    ];

    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Encrypt => "encrypt",
            Operation::Decrypt => "decrypt",
            Operation::Sign => "sign",
            Operation::Verify => "verify",
            Operation::MacCreate => "mac-create",
            Operation::MacVerify => "mac-verify",
            Operation::Generate => "generate",
            Operation::Inject => "inject",
            Operation::List => "list",
            Operation::Backup => "backup",
            Operation::Restore => "restore",
            Operation::GetLogs => "getlogs",
            Operation::ManageGrants => "manage-grants",
            Operation::GenerateDataKey => "generate-data-key",
            Operation::Rotate => "rotate",
            Operation::Disable => "disable",
            Operation::Delete => "delete",
        }
    }

    /// Parses the API spelling.
    pub fn parse(text: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.as_str() == text)
    }

    /// Uses of a key (what client discovery counts as "may use").
    pub fn is_use(self) -> bool {
        self.bit() & OperationSet::USES.0 != 0
    }

    /// Operations that act on the whole cluster, not on named keys: a grant
    /// holding one must select every key.
    pub fn is_cluster_wide(self) -> bool {
        matches!(self, Operation::Backup | Operation::Restore | Operation::GetLogs | Operation::ManageGrants)
    }

    fn bit(self) -> u32 {
        // 32 operations at most; the assertion runs at compile time.
        const _: () = assert!(Operation::ALL.len() <= 32);
        1 << (self as u32)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OperationSet(u32);

impl OperationSet {
    /// The uses of a key: the first six operations and generate-data-key.
    pub const USES: OperationSet = OperationSet(0b11_1111 | 1 << (Operation::GenerateDataKey as u32));

    /// The empty set.
    pub const fn empty() -> Self {
        OperationSet(0)
    }

    /// Adds `op`.
    pub fn insert(&mut self, op: Operation) {
        self.0 |= op.bit();
    }

    /// True when `op` is in the set.
    pub fn contains(self, op: Operation) -> bool {
        self.0 & op.bit() != 0
    }

    /// The union.
    pub fn union(self, other: OperationSet) -> OperationSet {
        OperationSet(self.0 | other.0)
    }

    /// The common operations.
    pub fn intersection(self, other: OperationSet) -> OperationSet {
        OperationSet(self.0 & other.0)
    }

    /// True when empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The operations, in [`Operation::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Operation> {
        Operation::ALL.into_iter().filter(move |op| self.contains(*op))
    }

    /// True when some operation of the set is cluster-wide.
    pub fn has_cluster_wide(self) -> bool {
        self.iter().any(Operation::is_cluster_wide)
    }
}

impl FromIterator<Operation> for OperationSet {
    fn from_iter<I: IntoIterator<Item = Operation>>(iter: I) -> Self {
        let mut set = OperationSet::empty();
        iter.into_iter().for_each(|op| set.insert(op));
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_round_trips_and_uses_are_the_key_operations() {
        for op in Operation::ALL {
            assert_eq!(Operation::parse(op.as_str()), Some(op));
            assert_eq!(op.is_use(), (op as u16) < 6 || op == Operation::GenerateDataKey, "{op}");
        }
        assert_eq!(Operation::parse("Encrypt"), None, "spelling is exact");
        let set: OperationSet = [Operation::Sign, Operation::Backup].into_iter().collect();
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![Operation::Sign, Operation::Backup]);
        assert!(set.has_cluster_wide());
    }
}
