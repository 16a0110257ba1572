//! Models that mlx-lm downloaded: `ORG/NAME[@REVISION]` resolved in the local Hugging Face
//! cache as huggingface_hub resolves it, without any network access.
//!
//! Cache root: `HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE` (its older name), else
//! `HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
//! A repository lives in `models--ORG--NAME/`: `refs/<branch or tag>` holds a commit hash,
//! `snapshots/<commit>/` the files (relative symlinks into `blobs/`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A model or adapter argument after resolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The folder that is read.
    pub dir: PathBuf,
    /// `ORG/NAME` and the commit, when the argument was a repo id.
    pub repo: Option<(String, String)>,
}

/// A local folder when one exists at `arg`; otherwise, when `arg` reads as a repo id, its
/// snapshot in the local Hugging Face cache.
pub fn resolve(arg: &Path) -> Result<Resolved> {
    if arg.exists() {
        return Ok(Resolved { dir: arg.to_path_buf(), repo: None });
    }
    let Some((repo, revision)) = arg.to_str().and_then(parse_repo_id) else {
        return Err(Error::input(arg, "no such folder (give an MLX model folder, or a Hugging Face repo id ORG/NAME)"));
    };
    let cache = cache_root().ok_or_else(|| {
        Error::input(arg, "no such folder, and no Hugging Face cache is configured (set HF_HUB_CACHE or HF_HOME)")
    })?;
    let dir = snapshot_dir(&cache, &repo, revision.unwrap_or("main"))?;
    let commit = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(Resolved { dir, repo: Some((repo, commit)) })
}

/// `ORG/NAME` or `ORG/NAME@REVISION`, with the characters huggingface_hub allows in ids.
pub fn parse_repo_id(s: &str) -> Option<(String, Option<&str>)> {
    let (id, revision) = match s.split_once('@') {
        Some((id, rev)) if !rev.is_empty() => (id, Some(rev)),
        Some(_) => return None,
        None => (s, None),
    };
    let (org, name) = id.split_once('/')?;
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 96
            && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && !p.starts_with(['-', '.'])
            && !p.ends_with(['-', '.'])
            && !p.contains("--")
            && !p.contains("..")
    };
    let rev_ok = revision.is_none_or(|r| !r.contains("..") && !r.starts_with('/') && !r.contains('\0'));
    (part_ok(org) && part_ok(name) && rev_ok).then(|| (id.to_string(), revision))
}

/// huggingface_hub's cache root from the environment.
pub fn cache_root() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(p) = var("HF_HUB_CACHE").or_else(|| var("HUGGINGFACE_HUB_CACHE")) {
        return Some(p);
    }
    if let Some(home) = var("HF_HOME") {
        return Some(home.join("hub"));
    }
    let cache = var("XDG_CACHE_HOME").or_else(|| home_dir().map(|h| h.join(".cache")))?;
    Some(cache.join("huggingface").join("hub"))
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The snapshot folder of `repo` at `revision` (a branch or tag under `refs/`, or a commit).
pub fn snapshot_dir(cache: &Path, repo: &str, revision: &str) -> Result<PathBuf> {
    let repo_dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    let not_cached = |what: String| {
        Error::input(
            &repo_dir,
            format!("{what}; it is not in the local Hugging Face cache: download it first with `hf download {repo}`"),
        )
    };
    if !repo_dir.is_dir() {
        return Err(not_cached(format!("{repo} is not a local folder")));
    }
    let ref_file = repo_dir.join("refs").join(revision);
    let commit = if ref_file.is_file() {
        let text = std::fs::read_to_string(&ref_file).map_err(|e| Error::io(&ref_file, e))?;
        text.trim().to_string()
    } else if is_commit_hash(revision) {
        revision.to_string()
    } else {
        return Err(not_cached(format!("{repo}: revision '{revision}' is not cached")));
    };
    if !is_commit_hash(&commit) {
        return Err(Error::input(&ref_file, format!("'{commit}' is not a commit hash")));
    }
    let dir = repo_dir.join("snapshots").join(&commit);
    if !dir.is_dir() {
        return Err(not_cached(format!("{repo}: snapshot {commit} is missing")));
    }
    Ok(dir)
}

fn is_commit_hash(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The repository name of a folder inside a cache (`…/models--ORG--NAME/snapshots/<commit>`).
pub fn cached_repo_name(dir: &Path) -> Option<String> {
    cached_repo_id(dir).and_then(|id| id.split_once('/').map(|(_, name)| name.to_string()))
}

/// The repo id (`ORG/NAME`) of a folder inside a cache.
pub fn cached_repo_id(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    let snapshots = dir.parent()?;
    if snapshots.file_name()? != "snapshots" {
        return None;
    }
    let repo = snapshots.parent()?.file_name()?.to_str()?;
    let rest = repo.strip_prefix("models--")?;
    rest.split_once("--").map(|(org, name)| format!("{org}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_parse_as_huggingface_hub_allows() {
        assert_eq!(parse_repo_id("mlx-community/Qwen3-4B-4bit"), Some(("mlx-community/Qwen3-4B-4bit".into(), None)));
        assert_eq!(parse_repo_id("org/name@v1.0"), Some(("org/name".into(), Some("v1.0"))));
        for bad in ["name", "a/b/c", "../x", "/abs/path", "org/", "/name", "org/na--me", "org/name@", "or g/n", ".a/b"]
        {
            assert_eq!(parse_repo_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn resolves_refs_and_commits_and_says_how_to_download() {
        let cache = tempfile::tempdir().unwrap();
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let repo = cache.path().join("models--org--name");
        std::fs::create_dir_all(repo.join("snapshots").join(commit)).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), commit).unwrap();
        let snap = repo.join("snapshots").join(commit);
        assert_eq!(snapshot_dir(cache.path(), "org/name", "main").unwrap(), snap);
        assert_eq!(snapshot_dir(cache.path(), "org/name", commit).unwrap(), snap);
        assert_eq!(cached_repo_name(&snap).as_deref(), Some("name"));
        let e = snapshot_dir(cache.path(), "org/other", "main").unwrap_err().to_string();
        assert!(e.contains("hf download org/other"), "{e}");
        let e = snapshot_dir(cache.path(), "org/name", "dev").unwrap_err().to_string();
        assert!(e.contains("'dev'") && e.contains("hf download org/name"), "{e}");
    }
}
