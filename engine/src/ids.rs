//! Executor and execution ids: a prefix and random characters from an alphabet without
//! look-alike characters (no `I`, `L`, `O`, `i`, `l`, `o`), the original's alphabet.

const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz";

/// `len` random characters of [`ALPHABET`].
fn random_id(len: usize) -> String {
    (0..len)
        .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
        .collect()
}

/// A new executor id: `de_` and 8 random characters.
pub(crate) fn executor_id() -> String {
    format!("de_{}", random_id(8))
}

/// A new execution id: `te_` and 24 random characters (about 139 bits).
pub(crate) fn execution_id() -> String {
    format!("te_{}", random_id(24))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_their_prefix_length_and_alphabet() {
        let executor = executor_id();
        assert!(
            executor.starts_with("de_") && executor.len() == 11,
            "{executor}"
        );
        let execution = execution_id();
        assert!(
            execution.starts_with("te_") && execution.len() == 27,
            "{execution}"
        );
        for c in execution[3..].bytes().chain(executor[3..].bytes()) {
            assert!(ALPHABET.contains(&c), "{c}");
        }
        assert_eq!(ALPHABET.len(), 56);
        for look_alike in b"ILOilo" {
            assert!(!ALPHABET.contains(look_alike));
        }
        assert_ne!(execution_id(), execution_id());
    }
}
