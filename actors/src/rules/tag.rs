//! Tags have one canonical form, whatever script, width or case a writer typed:
//! NFKC, then full Unicode case folding, with Unicode's own tables (ICU4X), so
//! `ＲＵＳＴ` and `rust`, `Straße` and `strasse`, an NFD and an NFC `café` are
//! one tag, and `İstanbul` or `हिन्दी` are tags like any other.

use std::collections::HashSet;

use icu_casemap::CaseMapper;
use icu_normalizer::ComposingNormalizerBorrowed;
use icu_properties::props::GeneralCategory;
use icu_properties::CodePointMapData;

/// Distinct tags a post may carry.
pub const TAGS_MAX: usize = 10;
/// Characters in one tag, once normalised.
pub const TAG_MAX_CHARS: usize = 32;
/// Entries a request may send before de-duplication; a longer list is refused
/// before any entry is looked at, so a hostile list costs nothing.
pub const TAGS_SENT_MAX: usize = 4 * TAGS_MAX;
/// Problems listed for one list of tags; the rest are counted, not listed.
pub const PROBLEMS_LISTED_MAX: usize = 10;
/// Folding and composing can each expose work for the other; this many rounds
/// reach the fixed point for every string the property tests have found.
const NORMALISE_ROUNDS: usize = 4;

/// The canonical form of a tag: trimmed, NFKC, case-folded; normalising it again changes nothing.
pub fn normalise(raw: &str) -> String {
    let nfkc = ComposingNormalizerBorrowed::new_nfkc();
    let fold = CaseMapper::new();
    let mut tag = nfkc.normalize(raw.trim()).trim().to_owned();
    for _ in 0..NORMALISE_ROUNDS {
        let next = nfkc.normalize(&fold.fold_string(&tag)).trim().to_owned();
        if next == tag {
            break;
        }
        tag = next;
    }
    tag
}

/// Letters and marks of every script, digits, and `- _ . + #`.
fn is_tag_char(c: char) -> bool {
    use GeneralCategory as G;
    if matches!(c, '-' | '_' | '.' | '+' | '#') {
        return true;
    }
    matches!(
        CodePointMapData::<GeneralCategory>::new().get(c),
        G::UppercaseLetter
            | G::LowercaseLetter
            | G::TitlecaseLetter
            | G::ModifierLetter
            | G::OtherLetter
            | G::NonspacingMark
            | G::SpacingMark
            | G::EnclosingMark
            | G::DecimalNumber
            | G::LetterNumber
            | G::OtherNumber
    )
}

/// Why a normalised tag is not allowed, if it is not.
fn check_normalised(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("a tag must not be empty".into());
    }
    if tag.len() > TAG_MAX_CHARS * 4 || tag.chars().count() > TAG_MAX_CHARS {
        return Err(format!("a tag is longer than {TAG_MAX_CHARS} characters"));
    }
    if !tag.chars().all(is_tag_char) {
        return Err(format!("tag {tag:?} may hold only letters, marks, digits and - _ . + #"));
    }
    Ok(())
}

/// The tags a client sent, normalised and de-duplicated (first occurrence kept),
/// or every problem found (at most [`PROBLEMS_LISTED_MAX`] listed, the rest counted).
pub fn normalise_all(raw: &[String]) -> Result<Vec<String>, Vec<String>> {
    if raw.len() > TAGS_SENT_MAX {
        return Err(vec![format!("at most {TAGS_SENT_MAX} tags may be sent ({} were)", raw.len())]);
    }
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    let mut tags = Vec::new();
    for entry in raw {
        let tag = normalise(entry);
        match check_normalised(&tag) {
            Err(problem) => problems.push(problem),
            Ok(()) if seen.insert(tag.clone()) => tags.push(tag),
            Ok(()) => {}
        }
    }
    if tags.len() > TAGS_MAX {
        problems.push(format!("at most {TAGS_MAX} distinct tags"));
    }
    if problems.is_empty() {
        return Ok(tags);
    }
    let unlisted = problems.len().saturating_sub(PROBLEMS_LISTED_MAX);
    problems.truncate(PROBLEMS_LISTED_MAX);
    if unlisted > 0 {
        problems.push(format!("and {unlisted} more problems with tags"));
    }
    Err(problems)
}

/// Tags as our own outbox writes them: canonical, allowed, distinct, at most [`TAGS_MAX`].
/// An event whose tags are not is not ours, or is from a broken writer: it is invalid.
pub fn check_canonical(tags: &[String]) -> Result<(), String> {
    if tags.len() > TAGS_MAX {
        return Err(format!("more than {TAGS_MAX} tags"));
    }
    let mut seen = HashSet::new();
    for tag in tags {
        check_normalised(tag)?;
        if normalise(tag) != *tag {
            return Err(format!("tag {tag:?} is not in canonical form"));
        }
        if !seen.insert(tag.as_str()) {
            return Err(format!("tag {tag:?} appears twice"));
        }
    }
    Ok(())
}

/// Tags a store kept under older rules, in their canonical form and de-duplicated
/// in order (spellings of one tag merge); one the rules now refuse is dropped.
/// For the upgrade of a store at open.
pub fn canonical_list(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags.iter().map(|t| normalise(t)) {
        if check_normalised(&tag).is_ok() && !out.contains(&tag) {
            out.push(tag);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn owned(tags: &[&str]) -> Vec<String> {
        tags.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn every_script_is_a_tag_once_normalised() {
        for (raw, want) in [
            ("İstanbul", "i\u{307}stanbul"),
            ("cafe\u{301}", "café"),
            ("हिन्दी", "हिन्दी"),
            ("ＲＵＳＴ", "rust"),
            ("Straße", "strasse"),
            ("  C++ ", "c++"),
            ("ΣΊΣΥΦΟΣ", "σίσυφοσ"),
        ] {
            let tag = normalise(raw);
            assert_eq!(tag, want, "{raw:?}");
            assert!(check_normalised(&tag).is_ok(), "{raw:?} -> {tag:?}");
        }
    }

    #[test]
    fn widths_cases_and_foldings_meet_in_one_tag() {
        let tags = normalise_all(&owned(&["ＲＵＳＴ", "rust", "Rust", "straße", "STRASSE", "café", "cafe\u{301}"])).unwrap();
        assert_eq!(tags, vec!["rust", "strasse", "café"]);
    }

    #[test]
    fn markup_operators_and_spaces_are_not_tags() {
        for bad in ["$where", "<img src=x>", "two words", "a/b", "x\u{200D}y", "semi;colon"] {
            assert!(normalise_all(&owned(&[bad])).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_hostile_list_is_refused_at_once_with_a_short_answer() {
        let many: Vec<String> = (0..8_500).map(|i| format!("t{i}")).collect();
        let problems = normalise_all(&many).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        let bad: Vec<String> = (0..TAGS_SENT_MAX).map(|i| format!("<{i}>")).collect();
        let problems = normalise_all(&bad).unwrap_err();
        assert_eq!(problems.len(), PROBLEMS_LISTED_MAX + 1);
        assert!(problems.last().unwrap().contains("more problems"));
    }

    #[test]
    fn an_event_must_carry_canonical_distinct_tags() {
        assert!(check_canonical(&owned(&["rust", "café"])).is_ok());
        for bad in [vec!["Rust"], vec!["rust", "rust"], vec!["$where"], vec![""], vec!["ＲＵＳＴ"]] {
            assert!(check_canonical(&owned(&bad)).is_err(), "{bad:?}");
        }
        let five_thousand = "x".repeat(5_000);
        assert!(check_canonical(&[five_thousand]).is_err());
    }

    proptest! {
        #[test]
        fn normalising_is_idempotent(raw in "\\PC{0,40}") {
            let once = normalise(&raw);
            prop_assert_eq!(normalise(&once), once.clone());
        }

        #[test]
        fn an_accepted_list_is_canonical(raw in proptest::collection::vec("\\PC{0,12}", 0..12)) {
            if let Ok(tags) = normalise_all(&raw) {
                prop_assert!(check_canonical(&tags).is_ok(), "{:?}", tags);
                prop_assert_eq!(normalise_all(&tags), Ok(tags.clone()));
            }
        }
    }
}
