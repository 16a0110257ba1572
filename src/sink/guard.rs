//! No output may replace an input or another output. Files are compared by identity
//! (device and inode after following symlinks, so hard links and Hugging Face cache blobs
//! count) and, for outputs that do not exist yet, by their resolved location.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Names in a model or adapter folder that a conversion reads (or may read): whatever the
/// tool takes from a checkpoint, so that no output can be written over it.
fn is_input_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".safetensors", ".json", ".jinja", ".model", ".md", ".txt", ".dat"].iter().any(|ext| lower.ends_with(ext))
}

/// The files of `dirs` that count as inputs.
pub fn input_files(dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    // A path that is not a folder is reported by whoever opens it.
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        for e in entries.filter_map(|e| e.ok()) {
            let path = e.path();
            if e.file_name().to_str().is_some_and(is_input_name) && path.is_file() {
                files.push(path);
            }
        }
    }
    Ok(files)
}

/// What a path refers to: the file it reaches (following symlinks) when it exists, and
/// where it would be created.
#[derive(Debug, PartialEq, Eq)]
struct Identity {
    file: Option<FileKey>,
    location: Option<PathBuf>,
}

#[cfg(unix)]
type FileKey = (u64, u64);
#[cfg(not(unix))]
type FileKey = PathBuf;

#[cfg(unix)]
fn file_key(path: &Path) -> Option<FileKey> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

// Elsewhere the canonical path stands for the file (hard links are not told apart).
#[cfg(not(unix))]
fn file_key(path: &Path) -> Option<FileKey> {
    path.canonicalize().ok()
}

/// The resolved folder joined with the file name: two spellings of one new file agree.
fn location(path: &Path) -> Option<PathBuf> {
    if let Ok(c) = path.canonicalize() {
        return Some(c);
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some(parent.canonicalize().ok()?.join(path.file_name()?))
}

fn identity(path: &Path) -> Identity {
    Identity { file: file_key(path), location: location(path) }
}

impl Identity {
    fn same(&self, other: &Identity) -> bool {
        (self.file.is_some() && self.file == other.file) || (self.location.is_some() && self.location == other.location)
    }
}

/// Refuses outputs that are an input file or each other, naming both paths.
pub fn check_outputs(inputs: &[PathBuf], outputs: &[&Path]) -> Result<()> {
    let ins: Vec<Identity> = inputs.iter().map(|p| identity(p)).collect();
    let outs: Vec<Identity> = outputs.iter().map(|p| identity(p)).collect();
    for (i, out) in outs.iter().enumerate() {
        if let Some(j) = ins.iter().position(|inp| inp.same(out)) {
            return Err(Error::Usage(format!(
                "output {} is the input file {}: choose another output path (no input is ever replaced)",
                outputs[i].display(),
                inputs[j].display()
            )));
        }
        if let Some(j) = outs[..i].iter().position(|o| o.same(out)) {
            return Err(Error::Usage(format!(
                "outputs {} and {} are the same file: give each output its own path",
                outputs[j].display(),
                outputs[i].display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clashes_are_found_through_links_and_spellings() {
        let d = tempfile::tempdir().unwrap();
        let m = d.path().join("m");
        std::fs::create_dir(&m).unwrap();
        let shard = m.join("model.safetensors");
        std::fs::write(&shard, b"x").unwrap();
        std::fs::write(m.join("old.gguf"), b"x").unwrap();
        let inputs = input_files(std::slice::from_ref(&m)).unwrap();
        assert_eq!(inputs, vec![shard.clone()], "a GGUF in the folder is not an input");
        let ok = d.path().join("out.gguf");
        assert!(check_outputs(&inputs, &[&ok, &m.join("new.gguf"), &m.join("old.gguf")]).is_ok());
        let dotted = m.join("..").join("m").join("model.safetensors");
        let e = check_outputs(&inputs, &[&dotted]).unwrap_err();
        assert!(e.to_string().contains("model.safetensors") && e.exit_code() == 2, "{e}");
        #[cfg(unix)]
        {
            let hard = d.path().join("hard.gguf");
            std::fs::hard_link(&shard, &hard).unwrap();
            assert!(check_outputs(&inputs, &[&hard]).is_err(), "hard link");
            let sym = d.path().join("sym.gguf");
            std::os::unix::fs::symlink(&shard, &sym).unwrap();
            assert!(check_outputs(&inputs, &[&sym]).is_err(), "symlink");
        }
        let same = d.path().join(".").join("out.gguf");
        let e = check_outputs(&inputs, &[&ok, &same]).unwrap_err().to_string();
        assert!(e.contains("same file"), "{e}");
    }
}
