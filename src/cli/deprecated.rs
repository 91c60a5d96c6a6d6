//! Flags renamed for one vocabulary (`--prometheus-url` for a URL, `--prometheus-bin` for the
//! binary): the old spelling still works for one release, as a hidden flag of its own, so the
//! command can tell which spelling was used and warn on stderr.

/// The value of a renamed flag: the new spelling's, else the old one's with a warning (clap
/// refuses both at once).
pub fn renamed<T>(new: Option<T>, old: Option<T>, old_name: &str, new_name: &str) -> Option<T> {
    if old.is_some() {
        eprintln!("{}", warning(old_name, new_name));
    }
    new.or(old)
}

/// The deprecation warning for `old_name`.
pub fn warning(old_name: &str, new_name: &str) -> String {
    format!(
        "warning: {old_name} is deprecated and will be removed in the next release: use {new_name}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_spelling_wins_and_the_old_one_still_works() {
        assert_eq!(renamed(Some(1), None, "--a", "--b"), Some(1));
        assert_eq!(renamed(None, Some(2), "--a", "--b"), Some(2));
        assert_eq!(renamed::<u8>(None, None, "--a", "--b"), None);
        assert!(warning("--prometheus", "--prometheus-url").contains("use --prometheus-url"));
    }
}
