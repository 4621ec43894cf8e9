//! Xenstore path validation.
//!
//! The rules follow xenstored's `is_valid_nodename`: a path is absolute
//! (starts with `/`) or relative to the domain's home directory, uses only
//! ASCII alphanumerics and `-/_@`, has no empty component (`//`) and no
//! trailing slash except for the root `/` itself. Checking locally turns a
//! daemon round trip ending in `EINVAL` into an immediate, typed error and
//! guarantees the path cannot smuggle a NUL into the payload.

use core::fmt;

/// Longest absolute path accepted (`XENSTORE_ABS_PATH_MAX`).
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
/// Longest relative path accepted (`XENSTORE_REL_PATH_MAX`).
pub const XENSTORE_REL_PATH_MAX: usize = 2048;

/// Why a path was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// The path is empty.
    Empty,
    /// The path exceeds the absolute or relative length limit.
    TooLong,
    /// The path contains a byte outside `[A-Za-z0-9-/_@]` (including NUL).
    BadChar(u8),
    /// The path ends in `/` (and is not the root).
    TrailingSlash,
    /// The path contains `//`.
    DoubleSlash,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::Empty => f.write_str("empty path"),
            PathError::TooLong => f.write_str("path too long"),
            PathError::BadChar(b) => write!(f, "invalid byte {b:#04x} in path"),
            PathError::TrailingSlash => f.write_str("trailing slash"),
            PathError::DoubleSlash => f.write_str("empty path component"),
        }
    }
}

/// Whether `b` may appear in a xenstore path.
pub fn is_valid_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'@')
}

/// Validates `path` against the xenstore path rules.
///
/// Special watch paths such as `@introduceDomain` are valid relative paths
/// under these rules.
pub fn validate(path: &str) -> Result<(), PathError> {
    let bytes = path.as_bytes();
    if bytes.is_empty() {
        return Err(PathError::Empty);
    }
    let max = if bytes.first() == Some(&b'/') { XENSTORE_ABS_PATH_MAX } else { XENSTORE_REL_PATH_MAX };
    if bytes.len() > max {
        return Err(PathError::TooLong);
    }
    if let Some(&bad) = bytes.iter().find(|&&b| !is_valid_char(b)) {
        return Err(PathError::BadChar(bad));
    }
    if bytes.windows(2).any(|w| w == b"//") {
        return Err(PathError::DoubleSlash);
    }
    if path != "/" && bytes.last() == Some(&b'/') {
        return Err(PathError::TrailingSlash);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    #[test]
    fn valid_paths() {
        for p in [
            "/",
            "/local/domain/0/name",
            "device/vif/0/state",
            "@introduceDomain",
            "@releaseDomain",
            "a",
            "/A-b_c@9",
        ] {
            assert_eq!(validate(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn invalid_paths() {
        let cases: [(&str, PathError); 10] = [
            ("", PathError::Empty),
            ("/a/", PathError::TrailingSlash),
            ("a/", PathError::TrailingSlash),
            ("//", PathError::DoubleSlash),
            ("/a//b", PathError::DoubleSlash),
            ("/a\0b", PathError::BadChar(0)),
            ("/a b", PathError::BadChar(b' ')),
            ("/a.b", PathError::BadChar(b'.')),
            ("/é", PathError::BadChar(0xc3)),
            ("/a\nb", PathError::BadChar(b'\n')),
        ];
        for (p, e) in cases {
            assert_eq!(validate(p), Err(e), "{p:?}");
        }
    }

    #[test]
    fn length_limits() {
        let mut abs = String::from("/");
        abs.extend(core::iter::repeat_n('a', XENSTORE_ABS_PATH_MAX - 1));
        assert_eq!(validate(&abs), Ok(()));
        abs.push('a');
        assert_eq!(validate(&abs), Err(PathError::TooLong));

        let mut rel: String = core::iter::repeat_n('a', XENSTORE_REL_PATH_MAX).collect();
        assert_eq!(validate(&rel), Ok(()));
        rel.push('a');
        assert_eq!(validate(&rel), Err(PathError::TooLong));
    }
}
