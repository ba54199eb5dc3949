//! Text from agents as people will see it. Some characters change what a reader sees without
//! being seen themselves: control characters (a newline can start a forged line), bidi controls
//! (U+202E makes `evil.exe` read `exe.live`) and zero-width or other format characters (two keys
//! that look the same). Identifiers (action, resource, scope keys) refuse them; free text keeps
//! them but every channel shows them as visible markers through [`with_markers`], which also
//! counts long runs of spaces (they could push text onto a line of its own) and marks the
//! look-alikes of Latin letters from other scripts in a word that has ASCII letters
//! (`pаypal.com` with a Cyrillic `а` reads `p[U+0430]ypal.com`).

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

/// A character that can pass for a Latin letter, an ASCII digit or sign in a Latin word: a
/// digit of another script (`०`, `١`, `߀`), a letter of a script whose letters look like Latin
/// ones or like digits (Greek, Cyrillic, Armenian, Cherokee, Coptic, Lisu, Deseret, runes,
/// Myanmar), an IPA, small-capital or click letter (`ɡ`, `ᴄ`, `ꜱ`, `ǀ`), Hebrew paseq `׀`, a
/// mathematical operator (`∣`), or a full-width, mathematical, circled or letterlike form
/// (`ｘ`, `𝐚`, `ⓐ`, `ⅹ`, `K` the Kelvin sign).
fn is_look_alike(c: char) -> bool {
    (!c.is_ascii() && c.is_numeric())
        || matches!(c,
            '\u{01C0}'..='\u{01C3}'     // click letters (ǀ reads as l)
            | '\u{05C0}'                 // Hebrew paseq
            | '\u{1000}'..='\u{109F}'   // Myanmar (ဝ reads as o)
            | '\u{16A0}'..='\u{16FF}'   // runes (ᛁ reads as I)
            | '\u{2200}'..='\u{22FF}'   // mathematical operators (∣, ∕)
            | '\u{A720}'..='\u{A7FF}'   // Latin extended-D (small capitals such as ꜱ)
            |
            '\u{0250}'..='\u{02AF}'     // IPA extensions
            | '\u{0370}'..='\u{03FF}'   // Greek and Coptic
            | '\u{0400}'..='\u{052F}'   // Cyrillic and its supplement
            | '\u{0531}'..='\u{058F}'   // Armenian
            | '\u{13A0}'..='\u{13FF}'   // Cherokee
            | '\u{1C80}'..='\u{1C8F}'   // Cyrillic extended-C
            | '\u{1D00}'..='\u{1DBF}'   // phonetic extensions (small capitals)
            | '\u{1F00}'..='\u{1FFF}'   // Greek extended
            | '\u{2100}'..='\u{218F}'   // letterlike symbols, roman numerals
            | '\u{2460}'..='\u{24FF}'   // enclosed alphanumerics
            | '\u{2C80}'..='\u{2CFF}'   // Coptic
            | '\u{2DE0}'..='\u{2DFF}'   // Cyrillic extended-A
            | '\u{A4D0}'..='\u{A4FF}'   // Lisu
            | '\u{A640}'..='\u{A69F}'   // Cyrillic extended-B
            | '\u{AB70}'..='\u{ABBF}'   // Cherokee supplement
            | '\u{FF01}'..='\u{FF5E}'   // full-width ASCII
            | '\u{10400}'..='\u{1044F}' // Deseret
            | '\u{1D400}'..='\u{1D7FF}' // mathematical alphanumerics
        )
}

/// The dotless `ı` and `ȷ`, which a combining dot turns into `i` and `j`.
fn is_dotless(c: char) -> bool {
    matches!(c, '\u{0131}' | '\u{0237}')
}

/// `s` with each look-alike ([`is_look_alike`]) in a word that also has an ASCII letter or digit shown
/// as a marker: such a word mixes scripts, which no address, host or name a person types does,
/// and is how `pаypal.com` passes for `paypal.com`. A word wholly in one script (`Отправить`)
/// is left as it is. Borrowed when there is nothing to mark.
fn mark_look_alikes(s: &str) -> Cow<'_, str> {
    let mixed = |word: &str| {
        word.chars().any(|c| c.is_ascii_alphanumeric())
            && (word.chars().any(is_look_alike)
                || word
                    .chars()
                    .zip(word.chars().skip(1))
                    .any(|(a, b)| is_dotless(a) && is_combining(b)))
    };
    if s.is_ascii() || !s.split(char::is_whitespace).any(mixed) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut rest = s;
    while !rest.is_empty() {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, after) = rest.split_at(end);
        if mixed(word) {
            let mut chars = word.chars().peekable();
            while let Some(c) = chars.next() {
                // A dotless `ı` or `ȷ` with a combining mark on it draws as `i` or `j`.
                let dotted = is_dotless(c) && chars.peek().copied().is_some_and(is_combining);
                if is_look_alike(c) || dotted {
                    out.push_str(&format!("[U+{:04X}]", u32::from(c)));
                } else {
                    out.push(c);
                }
                while dotted && let Some(m) = chars.next_if(|m| is_combining(*m)) {
                    out.push_str(&format!("[U+{:04X}]", u32::from(m)));
                }
            }
        } else {
            out.push_str(word);
        }
        let blanks = after
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(after.len());
        out.push_str(&after[..blanks]);
        rest = &after[blanks..];
    }
    Cow::Owned(out)
}

/// `s` with each hidden character replaced by a visible marker such as `[U+202E]`, so nothing
/// can reorder, hide or forge the text that follows it; each run of more than
/// [`SPACES_SHOWN_MAX`] blanks (white space, the Braille blank, with any combining marks on them)
/// as ` [N spaces] `; and each look-alike of a Latin letter in a word with ASCII letters
/// ([`mark_look_alikes`]) as a marker too. Borrowed when there is nothing to mark.
pub(crate) fn with_markers(s: &str) -> Cow<'_, str> {
    match mark_look_alikes(s) {
        Cow::Borrowed(s) => hidden_and_blanks(s),
        Cow::Owned(marked) => Cow::Owned(hidden_and_blanks(&marked).into_owned()),
    }
}

/// [`with_markers`] for hidden characters and long runs of blanks.
fn hidden_and_blanks(s: &str) -> Cow<'_, str> {
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

    /// An attacker pass: `email:ceo@pаypal.com` with a Cyrillic `а` (U+0430) showed unmarked,
    /// and the token was bound to a domain other than the one the approver read.
    #[test]
    fn look_alikes_in_a_latin_word_are_marked_and_one_script_words_are_not() {
        assert_eq!(
            with_markers("email:ceo@p\u{0430}ypal.com"),
            "email:ceo@p[U+0430]ypal.com"
        );
        // A word whose Latin part is only the TLD still mixes scripts.
        assert_eq!(
            with_markers("\u{0430}\u{0440}\u{0440}\u{04CF}\u{0435}.com"),
            "[U+0430][U+0440][U+0440][U+04CF][U+0435].com"
        );
        for (text, marked) in [
            ("ceo@\u{FF58}.com", "ceo@[U+FF58].com"),
            ("\u{0261}oogle.com", "[U+0261]oogle.com"),
            ("ceo@\u{2179}.com", "ceo@[U+2179].com"),
            ("\u{1D41A}dmin", "[U+1D41A]dmin"),
            ("Pay \u{03BF}ne invoice", "Pay [U+03BF]ne invoice"),
        ] {
            assert_eq!(with_markers(text), marked, "{text}");
        }
        // A second pass: other scripts' digits, runes, clicks, operators, small capitals,
        // Myanmar, a dotless i with a combining dot, and an IBAN group with Cyrillic О.
        for (text, marked) in [
            (
                "ceo@g\u{0AE6}\u{0AE6}gle.com",
                "ceo@g[U+0AE6][U+0AE6]gle.com",
            ),
            ("paypa\u{0661}.com", "paypa[U+0661].com"),
            ("g\u{07C0}gle", "g[U+07C0]gle"),
            ("g\u{101D}gle", "g[U+101D]gle"),
            ("paypa\u{01C0}.com", "paypa[U+01C0].com"),
            ("paypa\u{05C0}.com", "paypa[U+05C0].com"),
            ("paypa\u{16C1}.com", "paypa[U+16C1].com"),
            ("paypa\u{2223}.com", "paypa[U+2223].com"),
            ("ceo@\u{A731}tripe.com", "ceo@[U+A731]tripe.com"),
            (
                "m\u{0131}\u{0307}crosoft.com",
                "m[U+0131][U+0307]crosoft.com",
            ),
            (
                "DE89 3704 \u{041E}\u{041E}44",
                "DE89 3704 [U+041E][U+041E]44",
            ),
        ] {
            assert_eq!(with_markers(text), marked, "{text}");
        }
        // Words wholly in one script, accented Latin and other scripts beside ASCII words.
        for text in [
            "Отправить счёт клиенту",
            "Счёт для client@x.com",
            "café déjà vu",
            "Yıldız",
            "請求書をclient@x.comに送る",
        ] {
            assert!(matches!(with_markers(text), Cow::Borrowed(_)), "{text}");
        }
        // With hidden characters and long blanks too; the blanks between words are kept.
        assert_eq!(
            with_markers("p\u{0430}y\u{202E}    \u{3000}x"),
            "p[U+0430]y[U+202E] [5 spaces] x"
        );
        assert_eq!(with_markers("a\u{0430} \t b"), "a[U+0430] [U+0009] b");
    }

    #[test]
    fn markers_make_hidden_characters_visible() {
        assert_eq!(with_markers("plain text"), "plain text");
        assert!(matches!(with_markers("plain"), Cow::Borrowed(_)));
        assert_eq!(with_markers("evil\u{202E}exe.txt"), "evil[U+202E]exe.txt");
        assert_eq!(with_markers("a\nb\u{200B}"), "a[U+000A]b[U+200B]");
    }
}
