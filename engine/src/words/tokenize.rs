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
    classic_spans(data, |s, e| {
        buf.clear();
        buf.extend(data[s..e].iter().map(u8::to_ascii_lowercase));
        f(&buf);
    });
}

/// Bit `i` set when `block[i]` is ASCII whitespace (64 bytes at a time).
#[inline(always)]
fn space_mask(block: &[u8; 64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SSE2 is part of x86_64: 16 bytes per compare, no runtime detection needed.
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is always available on x86_64; loads are unaligned loads inside `block`.
        unsafe {
            let sp = _mm_set1_epi8(b' ' as i8);
            let nine = _mm_set1_epi8(9);
            let four = _mm_set1_epi8(4);
            let mut m = 0u64;
            for i in 0..4 {
                let x = _mm_loadu_si128(block.as_ptr().add(16 * i) as *const __m128i);
                // 9..=13 (\t \n \v \f \r): x - 9 <= 4 unsigned.
                let t = _mm_sub_epi8(x, nine);
                let ctl = _mm_cmpeq_epi8(_mm_min_epu8(t, four), t);
                let s = _mm_or_si128(ctl, _mm_cmpeq_epi8(x, sp));
                m |= (_mm_movemask_epi8(s) as u16 as u64) << (16 * i);
            }
            m
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut m = 0u64;
        for (i, &b) in block.iter().enumerate() {
            m |= (is_space(b) as u64) << i;
        }
        m
    }
}

/// Call `f(start, end)` with the byte span of every token of `data` under the classic rules
/// (maximal runs of non-ASCII-whitespace bytes). Whitespace is found 64 bytes at a time as a bit
/// mask, and spans are read off the mask's transitions, so there is no branch per byte.
#[inline(always)]
pub fn classic_spans(data: &[u8], mut f: impl FnMut(usize, usize)) {
    let n = data.len();
    let mut open = false; // a token started and has not ended yet
    let mut start = 0usize;
    let mut prev = 0u64; // 1 when the byte before this block is part of a token
    let mut base = 0usize;
    let mut tail = [b' '; 64];
    while base < n {
        let block: &[u8; 64] = if base + 64 <= n {
            data[base..base + 64].try_into().expect("64 bytes")
        } else {
            tail[..n - base].copy_from_slice(&data[base..]);
            &tail
        };
        let word = !space_mask(block);
        let shifted = (word << 1) | prev;
        let mut starts = word & !shifted;
        let mut ends = !word & shifted;
        loop {
            if open {
                if ends == 0 {
                    break;
                }
                let e = base + ends.trailing_zeros() as usize;
                ends &= ends - 1;
                f(start, e);
                open = false;
            } else {
                if starts == 0 {
                    break;
                }
                start = base + starts.trailing_zeros() as usize;
                starts &= starts - 1;
                open = true;
            }
        }
        prev = word >> 63;
        base += 64;
    }
    if open {
        f(start, n);
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
    fn spans_equal_split_ascii_whitespace() {
        let mut rnd = 12345u64;
        let alphabet = b" \t\n\r\x0b\x0caZ\xc3\xa9.\0";
        for len in 0..300 {
            let text: Vec<u8> = (0..len)
                .map(|_| {
                    rnd = rnd
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    alphabet[(rnd >> 33) as usize % alphabet.len()]
                })
                .collect();
            let mut got = Vec::new();
            classic_spans(&text, |s, e| got.push(&text[s..e]));
            let want: Vec<&[u8]> = text
                .split(|&b| is_space(b))
                .filter(|w| !w.is_empty())
                .collect();
            assert_eq!(got, want);
        }
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
