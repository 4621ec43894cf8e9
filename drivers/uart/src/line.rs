//! Terminal line discipline for console output: serial terminals want CRLF.

/// Writes `text` through `emit`, turning each `\n` into `\r\n`.
pub fn write_crlf(text: &[u8], mut emit: impl FnMut(&[u8])) {
    let mut rest = text;
    while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
        emit(&rest[..pos]);
        emit(b"\r\n");
        rest = &rest[pos + 1..];
    }
    if !rest.is_empty() {
        emit(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn run(text: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_crlf(text, |b| out.extend_from_slice(b));
        out
    }

    #[test]
    fn newlines_become_crlf() {
        assert_eq!(run(b"a\nb"), b"a\r\nb");
        assert_eq!(run(b"\n\n"), b"\r\n\r\n");
        assert_eq!(run(b"plain"), b"plain");
        assert_eq!(run(b""), b"");
    }
}
