//! The node tree with xenstore permission rules.

use std::collections::BTreeMap;

use xen_proto::iface::DomId;
use xenstore_wire::{Access, Permission, XsError};

/// A node: value and permissions (owner first; its access letter is the
/// default for unlisted domains).
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub value: Vec<u8>,
    pub perms: Vec<Permission>,
}

/// What a domain may do with a node, as xenstored decides: dom0 is
/// privileged, the owner has full access, listed domains get their entry,
/// everyone else gets the owner entry's letter.
pub(crate) fn access(perms: &[Permission], domid: DomId) -> Access {
    let Some(owner) = perms.first() else {
        return Access::None;
    };
    if domid == 0 || owner.domid == domid {
        return Access::Both;
    }
    perms.get(1..).unwrap_or_default().iter().find(|p| p.domid == domid).map_or(owner.access, |p| p.access)
}

pub(crate) fn can_read(perms: &[Permission], domid: DomId) -> bool {
    matches!(access(perms, domid), Access::Read | Access::Both)
}

pub(crate) fn can_write(perms: &[Permission], domid: DomId) -> bool {
    matches!(access(perms, domid), Access::Write | Access::Both)
}

/// The parent of an absolute path (`/` for top-level nodes).
pub(crate) fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Whether `p` is `base` or below it, component-wise.
pub(crate) fn is_at_or_below(p: &str, base: &str) -> bool {
    if base == "/" {
        return p.starts_with('/');
    }
    p.strip_prefix(base).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The whole store; cloned wholesale for a transaction's private copy.
#[derive(Clone, Debug)]
pub(crate) struct Tree {
    nodes: BTreeMap<String, Node>,
    /// Every node the last `rm` removed, with its perms: as in xenstored,
    /// a watch on a removed descendant fires if that node was readable.
    pub removed: Vec<Change>,
}

/// A change to report to watchers: the path and the perms that decide
/// who may see it.
pub(crate) type Change = (String, Vec<Permission>);

impl Tree {
    pub fn new() -> Tree {
        let mut nodes = BTreeMap::new();
        nodes.insert("/".to_string(), Node { value: Vec::new(), perms: vec![Permission::new(0, Access::None)] });
        Tree { nodes, removed: Vec::new() }
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// ENOENT if missing, EACCES if `domid` may not read it.
    pub fn readable(&self, domid: DomId, path: &str) -> Result<&Node, XsError> {
        let n = self.nodes.get(path).ok_or(XsError::Enoent)?;
        if !can_read(&n.perms, domid) {
            return Err(XsError::Eacces);
        }
        Ok(n)
    }

    pub fn children(&self, path: &str) -> Vec<String> {
        let prefix = if path == "/" { "/".to_string() } else { format!("{path}/") };
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| k.get(prefix.len()..))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .map(str::to_string)
            .collect()
    }

    /// Creates `path` and missing parents. Needs write access to the
    /// nearest existing ancestor; new nodes inherit its perms, with the
    /// creator as owner unless it is dom0 (as xenstored does).
    fn create(&mut self, domid: DomId, path: &str) -> Result<(), XsError> {
        let mut missing = vec![path.to_string()];
        let mut anc = parent(path);
        while !self.nodes.contains_key(anc) {
            missing.push(anc.to_string());
            anc = parent(anc);
        }
        let mut perms = self.nodes.get(anc).map(|n| n.perms.clone()).unwrap_or_default();
        if !can_write(&perms, domid) {
            return Err(XsError::Eacces);
        }
        if domid != 0 {
            if let Some(owner) = perms.first_mut() {
                owner.domid = domid;
            }
        }
        for p in missing.into_iter().rev() {
            let node = Node { value: Vec::new(), perms: perms.clone() };
            self.nodes.insert(p, node);
        }
        Ok(())
    }

    pub fn write(&mut self, domid: DomId, path: &str, value: &[u8]) -> Result<Change, XsError> {
        match self.nodes.get(path) {
            Some(n) if !can_write(&n.perms, domid) => return Err(XsError::Eacces),
            Some(_) => {}
            None => self.create(domid, path)?,
        }
        let n = self.nodes.get_mut(path).ok_or(XsError::Eio)?;
        n.value = value.to_vec();
        Ok((path.to_string(), n.perms.clone()))
    }

    /// Existing nodes are fine and change nothing (`None`).
    pub fn mkdir(&mut self, domid: DomId, path: &str) -> Result<Option<Change>, XsError> {
        if let Some(n) = self.nodes.get(path) {
            return if can_write(&n.perms, domid) { Ok(None) } else { Err(XsError::Eacces) };
        }
        self.create(domid, path)?;
        let perms = self.nodes.get(path).map(|n| n.perms.clone()).unwrap_or_default();
        Ok(Some((path.to_string(), perms)))
    }

    /// Removes a subtree. A missing node whose parent exists is already
    /// gone (`None`), as in xenstored.
    pub fn rm(&mut self, domid: DomId, path: &str) -> Result<Option<Change>, XsError> {
        if path == "/" {
            return Err(XsError::Einval);
        }
        let Some(n) = self.nodes.get(path) else {
            return if self.nodes.contains_key(parent(path)) { Ok(None) } else { Err(XsError::Enoent) };
        };
        if !can_write(&n.perms, domid) {
            return Err(XsError::Eacces);
        }
        let perms = n.perms.clone();
        self.removed =
            self.nodes.iter().filter(|(k, _)| is_at_or_below(k, path)).map(|(k, n)| (k.clone(), n.perms.clone())).collect();
        self.nodes.retain(|k, _| !is_at_or_below(k, path));
        Ok(Some((path.to_string(), perms)))
    }

    pub fn set_perms(&mut self, domid: DomId, path: &str, perms: Vec<Permission>) -> Result<Change, XsError> {
        let n = self.nodes.get_mut(path).ok_or(XsError::Enoent)?;
        if !can_write(&n.perms, domid) {
            return Err(XsError::Eacces);
        }
        let old_owner = n.perms.first().map(|p| p.domid);
        if domid != 0 && perms.first().map(|p| p.domid) != old_owner {
            // Unprivileged domains may not give nodes away.
            return Err(XsError::Eperm);
        }
        n.perms = perms;
        Ok((path.to_string(), n.perms.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perms_rules() {
        let p = [Permission::new(3, Access::None), Permission::new(5, Access::Read)];
        assert_eq!(access(&p, 0), Access::Both);
        assert_eq!(access(&p, 3), Access::Both);
        assert_eq!(access(&p, 5), Access::Read);
        assert_eq!(access(&p, 7), Access::None);
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert!(is_at_or_below("/a/b", "/a") && !is_at_or_below("/ab", "/a"));
    }

    #[test]
    fn create_inherits_and_children() {
        let mut t = Tree::new();
        t.write(0, "/x/y/z", b"v").unwrap();
        assert_eq!(t.children("/x"), vec!["y"]);
        assert_eq!(t.children("/"), vec!["x"]);
        assert_eq!(t.write(2, "/x/q", b"").unwrap_err(), XsError::Eacces);
        t.rm(0, "/x").unwrap();
        assert!(t.get("/x/y/z").is_none());
    }
}
