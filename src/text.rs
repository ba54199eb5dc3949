//! Text from agents as people will see it. Some characters change what a reader sees without
//! being seen themselves: control characters (a newline can start a forged line), bidi controls
//! (U+202E makes `evil.exe` read `exe.live`) and zero-width or other format characters (two keys
//! that look the same). Identifiers (action, resource, scope keys) refuse them; free text keeps
//! them but every channel shows them as visible markers through [`with_markers`], which also
//! counts long runs of spaces (they could push text onto a line of its own).

use std::borrow::Cow;

/// True for a character that is invisible or changes how the text around it is displayed:
/// C0/C1 controls (newline and tab included), bidi embeddings, overrides, isolates and marks,
/// zero-width characters, and the other Unicode format characters (category Cf) in use.
pub(crate) fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}'                // soft hyphen
            | '\u{034F}'              // combining grapheme joiner
            | '\u{061C}'              // Arabic letter mark
            | '\u{115F}' | '\u{1160}' // Hangul fillers
            | '\u{17B4}' | '\u{17B5}'
            | '\u{180B}'..='\u{180F}' // Mongolian variation selectors and vowel separator
            | '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM, RLM
            | '\u{2028}'..='\u{202E}' // line/paragraph separators, bidi embeddings and overrides
            | '\u{205F}'..='\u{206F}' // word joiner, invisible operators, bidi isolates
            | '\u{3164}'              // Hangul filler
            | '\u{FE00}'..='\u{FE0F}' // variation selectors
            | '\u{FEFF}'              // zero-width no-break space (BOM)
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
            | '\u{1BCA0}'..='\u{1BCA3}' // shorthand format controls
            | '\u{1D173}'..='\u{1D17A}' // musical symbol format controls (begin beam, …)
            | '\u{E0000}'..='\u{E007F}' // tags
            | '\u{E0100}'..='\u{E01EF}' // variation selectors supplement
        )
}

/// The first hidden character of `s`, if any.
pub(crate) fn first_hidden(s: &str) -> Option<char> {
    s.chars().find(|c| is_hidden(*c))
}

/// Longest run of blanks shown as it is. A longer one could push agent text onto a line of its
/// own that looks like ours (wide spaces such as U+2003 do not collapse on a web page), so it is
/// shown counted, e.g. `[40 spaces]`.
const SPACES_SHOWN_MAX: usize = 3;

/// A character that shows as empty room: white space, and the Braille blank (U+2800), which
/// Unicode does not call white space. (Fillers such as U+3164 are hidden characters.)
pub(crate) fn is_blank(c: char) -> bool {
    c.is_whitespace() || c == '\u{2800}'
}

/// A combining mark (the common blocks): drawn on the character before it, so after a blank it
/// adds no room and must not end a run of blanks.
fn is_combining(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE20}'..='\u{FE2F}')
}

/// A run of blanks (and the combining marks on them) being read.
#[derive(Default)]
struct Run {
    text: String,
    blanks: usize,
}

impl Run {
    /// Takes `c` into the run if it belongs there.
    fn take(&mut self, c: char) -> bool {
        if is_blank(c) {
            self.blanks += 1;
        } else if !(self.blanks > 0 && is_combining(c)) {
            return false;
        }
        self.text.push(c);
        true
    }

    fn too_long(&self) -> bool {
        self.blanks > SPACES_SHOWN_MAX
    }

    /// Ends the run: as it is, or counted when too long.
    fn flush(&mut self, out: &mut String) {
        if self.too_long() {
            out.push_str(&format!(" [{} spaces] ", self.text.chars().count()));
        } else {
            out.push_str(&self.text);
        }
        *self = Run::default();
    }
}

/// `s` with each hidden character replaced by a visible marker such as `[U+202E]`, so nothing
/// can reorder, hide or forge the text that follows it, and each run of more than
/// [`SPACES_SHOWN_MAX`] blanks (white space, the Braille blank, with any combining marks on them)
/// as ` [N spaces] `. Borrowed when there is nothing to mark.
pub(crate) fn with_markers(s: &str) -> Cow<'_, str> {
    if !needs_marking(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut run = Run::default();
    for c in s.chars() {
        if is_hidden(c) {
            run.flush(&mut out);
            out.push_str(&format!("[U+{:04X}]", u32::from(c)));
        } else if !run.take(c) {
            run.flush(&mut out);
            out.push(c);
        }
    }
    run.flush(&mut out);
    Cow::Owned(out)
}

/// Whether [`with_markers`] changes `s`: a hidden character, or a run of blanks too long to show
/// as it is (one pass).
fn needs_marking(s: &str) -> bool {
    let mut run = Run::default();
    s.chars().any(|c| {
        if is_hidden(c) {
            return true;
        }
        if !run.take(c) {
            run = Run::default();
        }
        run.too_long()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_runs_of_spaces_are_counted_wide_ones_too() {
        assert!(matches!(with_markers("a   b"), Cow::Borrowed("a   b")));
        assert_eq!(with_markers("a    b"), "a [4 spaces] b");
        assert_eq!(
            with_markers("a\u{00A0}\u{3000}\u{2003}\u{2003}b"),
            "a [4 spaces] b"
        );
        let decoy = format!("DE89{}(verified payee)", "\u{2003}".repeat(60));
        assert_eq!(with_markers(&decoy), "DE89 [60 spaces] (verified payee)");
        // A hidden character ends a run and is marked; a newline is one.
        assert_eq!(with_markers("a  \n    b"), "a  [U+000A] [4 spaces] b");
        assert_eq!(with_markers("    "), " [4 spaces] ");
        // Blanks that are not white space, and combining marks on blanks, do not end a run.
        let braille = format!(
            "DE89{}(verified payee)",
            "\u{3000}\u{3000}\u{3000}\u{2800}".repeat(8)
        );
        assert_eq!(with_markers(&braille), "DE89 [32 spaces] (verified payee)");
        let marked = format!("a{}b", "\u{2003}\u{2003}\u{2003}\u{0332}".repeat(3));
        assert_eq!(with_markers(&marked), "a [12 spaces] b");
        // A combining mark on a letter is the letter's, not a blank's.
        assert!(matches!(with_markers("e\u{0301}   x"), Cow::Borrowed(_)));
    }

    #[test]
    fn hidden_characters_are_found() {
        for c in [
            '\n',
            '\t',
            '\u{0}',
            '\u{7F}',
            '\u{85}',
            '\u{202E}',
            '\u{2066}',
            '\u{200B}',
            '\u{FEFF}',
            '\u{E0041}',
        ] {
            assert!(is_hidden(c), "{:04X}", u32::from(c));
        }
        for c in ['a', ' ', 'é', 'ж', '€', '😀', '\u{05D0}'] {
            assert!(!is_hidden(c), "{:04X}", u32::from(c));
        }
    }

    #[test]
    fn markers_make_hidden_characters_visible() {
        assert_eq!(with_markers("plain text"), "plain text");
        assert!(matches!(with_markers("plain"), Cow::Borrowed(_)));
        assert_eq!(with_markers("evil\u{202E}exe.txt"), "evil[U+202E]exe.txt");
        assert_eq!(with_markers("a\nb\u{200B}"), "a[U+000A]b[U+200B]");
    }
}
