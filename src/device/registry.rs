//! The set of known profiles: the ones shipped with Ohmnibus plus any the
//! operator drops into a profiles directory (same name = replaces the shipped one).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::profile::{Profile, ProfileError};

/// Profiles compiled into the binary, so it runs with no files beside it.
pub(super) const BUILTIN: &[(&str, &str)] = &[
    ("profiles/a1000.toml", include_str!("../../profiles/a1000.toml")),
    ("profiles/th40c.toml", include_str!("../../profiles/th40c.toml")),
    (
        "profiles/countis-e33.toml",
        include_str!("../../profiles/countis-e33.toml"),
    ),
    (
        "profiles/countis-e43.toml",
        include_str!("../../profiles/countis-e43.toml"),
    ),
    (
        "profiles/countis-e44.toml",
        include_str!("../../profiles/countis-e44.toml"),
    ),
    (
        "profiles/pulse-concentrator.toml",
        include_str!("../../profiles/pulse-concentrator.toml"),
    ),
];

#[derive(Debug, Clone, Default)]
pub struct ProfileSet {
    profiles: BTreeMap<String, Arc<Profile>>,
}

impl ProfileSet {
    /// The shipped profiles. They are checked by the test suite, so a broken
    /// one never reaches a release.
    pub fn builtin() -> ProfileSet {
        let mut set = ProfileSet::default();
        for (file, text) in BUILTIN {
            let profile = Profile::parse(file, text).unwrap_or_else(|error| panic!("shipped {error}"));
            set.insert(profile);
        }
        set
    }

    /// The shipped profiles, then every `*.toml` in `dir` on top of them.
    pub fn load(dir: Option<&Path>) -> Result<ProfileSet, ProfileError> {
        let mut set = ProfileSet::builtin();
        let Some(dir) = dir else { return Ok(set) };
        let entries = std::fs::read_dir(dir).map_err(|error| ProfileError {
            file: dir.display().to_string(),
            field: "directory".to_owned(),
            reason: error.to_string(),
        })?;
        let mut paths: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            set.insert(Profile::load(&path)?);
        }
        Ok(set)
    }

    pub fn insert(&mut self, profile: Profile) {
        self.profiles.insert(profile.name.clone(), Arc::new(profile));
    }

    pub fn get(&self, name: &str) -> Option<Arc<Profile>> {
        self.profiles.get(name).cloned()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }
}
