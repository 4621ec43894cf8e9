//! A newc ("070701") cpio writer, for the small archive of files the lab
//! injects into dom0. Linux unpacks an initramfs made of concatenated
//! archives one after another, so this one, gzipped, goes after the cached
//! dom0 initramfs and its files appear under `/cohort` (see src/lab.rs).
//!
//! newc is 110 bytes of ASCII header (magic and 13 fields of 8 hex digits),
//! the NUL-terminated name and the data, each padded to 4 bytes, and a
//! `TRAILER!!!` entry at the end. Owners are 0:0 and times 0.

use std::io::{self, Write};

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;

pub struct Writer<W: Write> {
    out: W,
    written: u64,
    ino: u32,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Writer<W> {
        Writer { out, written: 0, ino: 1 }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0; 3][..n])
    }

    fn entry(&mut self, name: &str, mode: u32, nlink: u32, data: &[u8]) -> io::Result<()> {
        if name.is_empty() || name.starts_with('/') || name.contains('\0') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad cpio name {name:?}")));
        }
        let size =
            u32::try_from(data.len()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{name}: over 4 GiB")))?;
        let ino = if name == "TRAILER!!!" { 0 } else { self.ino };
        self.ino += 1;
        let fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, name.len() as u32 + 1, 0];
        let mut header = String::from("070701");
        for f in fields {
            header.push_str(&format!("{f:08X}"));
        }
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    /// A directory, `name` relative (`cohort/scenarios`).
    pub fn dir(&mut self, name: &str, perm: u32) -> io::Result<()> {
        self.entry(name, S_IFDIR | (perm & 0o7777), 2, &[])
    }

    /// A regular file.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(name, S_IFREG | (perm & 0o7777), 1, data)
    }

    /// Writes the trailer and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, 1, &[])?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn archive() -> Vec<u8> {
        let mut w = Writer::new(Vec::new());
        w.dir("cohort", 0o755).unwrap();
        w.file("cohort/a.sh", 0o755, b"echo hi\n").unwrap();
        w.file("cohort/empty", 0o644, b"").unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn layout_is_newc() {
        let bytes = archive();
        assert_eq!(&bytes[..6], b"070701");
        // First entry: header, "cohort\0" (117 bytes, padded to 120), no data.
        assert_eq!(&bytes[110..117], b"cohort\0");
        assert_eq!(&bytes[120..126], b"070701");
        assert_eq!(bytes.len() % 4, 0);
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("echo hi\n") && text.ends_with("TRAILER!!!\0\0\0\0"), "{text:?}");
        assert!(Writer::new(Vec::new()).file("/abs", 0o644, b"").is_err());
    }

    /// GNU cpio, when the machine has it, reads the archive back.
    #[test]
    fn cpio_lists_it() {
        let Ok(mut child) = Command::new("cpio")
            .args(["-t", "-v", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        else {
            eprintln!("no cpio on this machine: listing not checked");
            return;
        };
        child.stdin.take().unwrap().write_all(&archive()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let listing = String::from_utf8_lossy(&out.stdout);
        let names: Vec<&str> = listing.lines().map(|l| l.rsplit(' ').next().unwrap()).collect();
        assert_eq!(names, ["cohort", "cohort/a.sh", "cohort/empty"]);
        assert!(listing.lines().nth(1).unwrap().starts_with("-rwxr-xr-x") && listing.contains(" 8 "), "{listing}");
    }
}
