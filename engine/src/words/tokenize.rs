//! Tokenisers: the classic word-count rules (ASCII whitespace, ASCII lowercase, punctuation kept)
//! and a Unicode mode (runs of letters/digits, Unicode lowercase).

/// ASCII whitespace as the classic benchmark (`tr -s '[:space:]'`) sees it.
#[inline]
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Call `f` with every token of `data` under the classic rules, lowercased into a scratch buffer.
pub fn classic(data: &[u8], mut f: impl FnMut(&[u8])) {
    let mut buf: Vec<u8> = Vec::with_capacity(64);
    let mut i = 0;
    let n = data.len();
    while i < n {
        while i < n && is_space(data[i]) {
            i += 1;
        }
        let start = i;
        let mut upper = false;
        while i < n && !is_space(data[i]) {
            upper |= data[i].is_ascii_uppercase();
            i += 1;
        }
        if i > start {
            let tok = &data[start..i];
            if upper {
                buf.clear();
                buf.extend(tok.iter().map(|b| b.to_ascii_lowercase()));
                f(&buf);
            } else {
                f(tok);
            }
        }
    }
}

/// Call `f` with every Unicode word (letters and digits) of `text`, lowercased.
pub fn unicode(text: &str, mut f: impl FnMut(&[u8])) {
    let mut buf = String::with_capacity(64);
    for c in text.chars() {
        if c.is_alphanumeric() {
            if c.is_ascii() {
                buf.push(c.to_ascii_lowercase());
            } else {
                buf.extend(c.to_lowercase());
            }
        } else if !buf.is_empty() {
            f(buf.as_bytes());
            buf.clear();
        }
    }
    if !buf.is_empty() {
        f(buf.as_bytes());
    }
}

/// The first position at or after `pos` where a chunk may start: just after an ASCII whitespace byte
/// (0 and `data.len()` are boundaries). Both tokenisers treat ASCII whitespace as a separator, so
/// cutting there never splits a word or a UTF-8 character.
pub fn boundary(data: &[u8], pos: usize) -> usize {
    if pos == 0 || pos >= data.len() {
        return pos.min(data.len());
    }
    let mut i = pos;
    while i < data.len() && !is_space(data[i - 1]) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str, uni: bool) -> Vec<String> {
        let mut v = Vec::new();
        if uni {
            unicode(s, |t| v.push(String::from_utf8(t.to_vec()).unwrap()));
        } else {
            classic(s.as_bytes(), |t| {
                v.push(String::from_utf8(t.to_vec()).unwrap())
            });
        }
        v
    }

    #[test]
    fn classic_keeps_punctuation_and_lowercases_ascii() {
        assert_eq!(
            toks("  The cat,\tTHE dog.\n", false),
            ["the", "cat,", "the", "dog."]
        );
        assert_eq!(toks("Éclair ÉCLAIR", false), ["Éclair", "Éclair"]);
    }

    #[test]
    fn unicode_words_fold_case() {
        assert_eq!(
            toks("Straße, STRASSE! Éclair-42", true),
            ["straße", "strasse", "éclair", "42"]
        );
    }

    #[test]
    fn boundary_is_after_whitespace() {
        let d = b"abc def ghi";
        assert_eq!(boundary(d, 0), 0);
        assert_eq!(boundary(d, 1), 4);
        assert_eq!(boundary(d, 4), 4);
        assert_eq!(boundary(d, 5), 8);
        assert_eq!(boundary(d, 10), 11);
        assert_eq!(boundary(d, 99), 11);
    }
}
