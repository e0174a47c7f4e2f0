package filter

import (
	"encoding/binary"
	"fmt"
)

// detector identifies a built-in detector; custom ones follow numBuiltin.
// The order is also the priority when two matches overlap: the lower,
// more specific one names the marker.
type detector uint8

const (
	detPrivateKey detector = iota
	detJWT
	detAWSKeyID
	detAWSSecret
	detGitHub
	detGitLab
	detSlack
	detURLPassword
	detBasicAuth
	detBearer
	detSecretKV
	detCreditCard
	numBuiltin
)

var builtinNames = [numBuiltin]string{
	detPrivateKey:  "private_key",
	detJWT:         "jwt",
	detAWSKeyID:    "aws_access_key_id",
	detAWSSecret:   "aws_secret_key",
	detGitHub:      "github_token",
	detGitLab:      "gitlab_token",
	detSlack:       "slack_token",
	detURLPassword: "url_password",
	detBasicAuth:   "basic_auth",
	detBearer:      "bearer",
	detSecretKV:    "secret_kv",
	detCreditCard:  "credit_card",
}

// family is what the prefilter found: the routine that checks it.
type family uint8

const (
	famJWT family = iota
	famAWS
	famGitHub
	famGitLab
	famSlack
	famSlackHook
	famPEM
	famURL
	famBearer
	famKey
)

// literal is a fixed string that starts a candidate. The prefilter reads
// byte pairs at even offsets of a line only, so it marks two pairs of the
// literal, at an even and at an odd offset in it: wherever the literal
// sits, one of them is read. They are chosen to be rare in log lines: the
// keywords' pairs by their frequency in testdata/corpus/negatives.txt and
// in loggen lines.
type literal struct {
	text string
	fold bool // ASCII case-insensitive
	fam  family
	at   [2]int // offsets of the two marked pairs, one even and one odd
	need []detector
}

func lits(fam family, at [2]int, need []detector, texts ...string) []literal {
	out := make([]literal, len(texts))
	for i, t := range texts {
		out[i] = literal{text: t, fam: fam, at: at, need: need}
	}
	return out
}

func foldLits(fam family, at [2]int, need []detector, texts ...string) []literal {
	out := lits(fam, at, need, texts...)
	for i := range out {
		out[i].fold = true
	}
	return out
}

// allLiterals is every literal of every built-in detector.
var allLiterals = func() []literal {
	var l []literal
	// Every JWT starts with eyJ (base64 of `{"`).
	l = append(l, lits(famJWT, [2]int{0, 1}, []detector{detJWT}, "eyJ")...)
	aws := []detector{detAWSKeyID}
	l = append(l, lits(famAWS, [2]int{1, 2}, aws, "AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "APKA")...)
	l = append(l, lits(famAWS, [2]int{0, 1}, aws, "A3T")...)
	gh := []detector{detGitHub}
	l = append(l, lits(famGitHub, [2]int{1, 2}, gh, "ghp_", "gho_", "ghu_")...)
	l = append(l, lits(famGitHub, [2]int{1, 2}, gh, "ghs_", "ghr_")...)
	l = append(l, lits(famGitHub, [2]int{4, 5}, gh, "github_pat_")...)
	gl := []detector{detGitLab}
	l = append(l, lits(famGitLab, [2]int{0, 1}, gl, "glpat-", "glptt-", "glrt-", "glcbt-", "glsoat-", "glffct-", "glft-")...)
	l = append(l, lits(famGitLab, [2]int{0, 3}, gl, "gldt-", "glimt-", "gloas-", "glagent-")...)
	sl := []detector{detSlack}
	l = append(l, lits(famSlack, [2]int{0, 1}, sl, "xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxo-", "xoxe-", "xoxe.")...)
	l = append(l, lits(famSlack, [2]int{0, 3}, sl, "xapp-")...)
	l = append(l, lits(famSlackHook, [2]int{5, 6}, sl, "hooks.slack.com/services/")...)
	l = append(l, lits(famPEM, [2]int{0, 1}, []detector{detPrivateKey}, "-----BEGIN")...)
	l = append(l, lits(famURL, [2]int{0, 1}, []detector{detURLPassword}, "://")...)
	// Lower case "bearer" stands alone rarely (token_type=bearer); after
	// an Authorization key famKey takes it in any case.
	l = append(l, lits(famBearer, [2]int{0, 1}, []detector{detBearer}, "Bearer", "BEARER")...)
	kv := []detector{detSecretKV, detAWSSecret}
	l = append(l, foldLits(famKey, [2]int{3, 4}, kv, "password", "passwd")...)
	l = append(l, foldLits(famKey, [2]int{0, 1}, kv, "pwd")...)
	l = append(l, foldLits(famKey, [2]int{1, 2}, kv, "pass")...)
	l = append(l, foldLits(famKey, [2]int{4, 5}, kv, "passphrase")...)
	l = append(l, foldLits(famKey, [2]int{1, 4}, kv, "secret")...)
	l = append(l, foldLits(famKey, [2]int{0, 1}, kv, "token")...)
	l = append(l, foldLits(famKey, [2]int{1, 2}, kv, "apikey")...)
	l = append(l, foldLits(famKey, [2]int{2, 3}, kv, "api_key", "api-key", "privatekey", "private_key", "private-key")...)
	l = append(l, foldLits(famKey, [2]int{5, 6}, []detector{detBearer, detBasicAuth}, "authorization")...)
	return l
}()

// prefilter finds candidates: it reads a line two bytes at a time at even
// offsets, looks each pair up in tab, and sums the four values of every
// aligned 8-byte word. A pair of a literal is worth litPair (its candidates
// are cands[idx[pair]]); a pair of card characters (two digits, or a digit
// and a space or dash) is worth 1; any other pair 0. Only a word that holds
// a literal's pair, or a run of card pairs long enough for a card number,
// is looked at further; every other word costs four loads and adds.
type prefilter struct {
	tab   [1 << 16]uint8
	idx   [1 << 16]uint16
	cands [][]cand
	cards bool
}

const litPair = 0x10

type cand struct {
	lit *literal
	off int
}

func newPrefilter(on *[numBuiltin]bool) *prefilter {
	p := &prefilter{cards: on[detCreditCard], cands: [][]cand{nil}}
	if p.cards {
		for a := 0; a < 256; a++ {
			for b := 0; b < 256; b++ {
				if cardPair(byte(a), byte(b)) {
					p.tab[a|b<<8] = 1
				}
			}
		}
	}
	for i := range allLiterals {
		l := &allLiterals[i]
		use := false
		for _, d := range l.need {
			use = use || on[d]
		}
		if !use {
			continue
		}
		if (l.at[0]+l.at[1])%2 == 0 || max(l.at[0], l.at[1])+2 > len(l.text) {
			panic(fmt.Sprintf("filter: literal %q: marks at %v must have an even and an odd offset", l.text, l.at))
		}
		for _, off := range l.at {
			for _, v := range variants(l.text[off:off+2], l.fold) {
				u := uint16(v[0]) | uint16(v[1])<<8
				if p.tab[u] == 1 {
					panic(fmt.Sprintf("filter: literal pair %q is also a card pair", v))
				}
				p.tab[u] = litPair
				if p.idx[u] == 0 {
					p.idx[u] = uint16(len(p.cands))
					p.cands = append(p.cands, nil)
				}
				p.cands[p.idx[u]] = append(p.cands[p.idx[u]], cand{lit: l, off: off})
			}
		}
	}
	return p
}

// variants returns pair, and with fold every ASCII case spelling of it.
func variants(pair string, fold bool) []string {
	if !fold {
		return []string{pair}
	}
	out := []string{""}
	for i := 0; i < len(pair); i++ {
		c := pair[i]
		var next []string
		for _, o := range out {
			lo, up := lower(c), upper(c)
			next = append(next, o+string(lo))
			if up != lo {
				next = append(next, o+string(up))
			}
		}
		out = next
	}
	return out
}

func cardPair(a, b byte) bool {
	return (isDigit(a) || isCardSep(a)) && (isDigit(b) || isCardSep(b)) && (isDigit(a) || isDigit(b))
}

// scan adds the spans of every built-in detector's matches in s to st.
//
// A card number of 13 digits or more holds at least 6 consecutive card
// pairs at even offsets. Spread over aligned words holding c0, c1, c2 card
// pairs, that is c0+c1 >= 6 for two neighbours, or c1 == 4 with c0, c2 > 0:
// only then does cardRuns look at the digits. Timestamps, counters and
// numbers of up to 11 digits never get there.
func (p *prefilter) scan(f *Filter, st *Stream, s []byte) {
	tab := &p.tab
	var c1, c2 uint32 // card pairs of the two words before
	i := 0
	for ; i+16 <= len(s); i += 16 {
		w := s[i : i+16 : i+16]
		a := uint32(tab[binary.LittleEndian.Uint16(w[0:])]) + uint32(tab[binary.LittleEndian.Uint16(w[2:])]) +
			uint32(tab[binary.LittleEndian.Uint16(w[4:])]) + uint32(tab[binary.LittleEndian.Uint16(w[6:])])
		b := uint32(tab[binary.LittleEndian.Uint16(w[8:])]) + uint32(tab[binary.LittleEndian.Uint16(w[10:])]) +
			uint32(tab[binary.LittleEndian.Uint16(w[12:])]) + uint32(tab[binary.LittleEndian.Uint16(w[14:])])
		if a|b >= litPair {
			if a >= litPair {
				p.word(f, st, s, i)
			}
			if b >= litPair {
				p.word(f, st, s, i+8)
			}
		}
		ca, cb := a&(litPair-1), b&(litPair-1)
		if c1+ca >= 6 || c1 == 4 && c2 != 0 && ca != 0 || ca+cb >= 6 || ca == 4 && c1 != 0 && cb != 0 {
			p.cardRuns(f, st, s, max(i-8, 0), i+16)
		}
		c2, c1 = ca, cb
	}
	if i < len(s) {
		// The last bytes, zero-padded to a chunk: no marked pair holds a NUL.
		var w [16]byte
		copy(w[:], s[i:])
		a := uint32(tab[binary.LittleEndian.Uint16(w[0:])]) + uint32(tab[binary.LittleEndian.Uint16(w[2:])]) +
			uint32(tab[binary.LittleEndian.Uint16(w[4:])]) + uint32(tab[binary.LittleEndian.Uint16(w[6:])])
		b := uint32(tab[binary.LittleEndian.Uint16(w[8:])]) + uint32(tab[binary.LittleEndian.Uint16(w[10:])]) +
			uint32(tab[binary.LittleEndian.Uint16(w[12:])]) + uint32(tab[binary.LittleEndian.Uint16(w[14:])])
		if a >= litPair {
			p.word(f, st, s, i)
		}
		if b >= litPair {
			p.word(f, st, s, i+8)
		}
		ca, cb := a&(litPair-1), b&(litPair-1)
		if c1+ca >= 6 || c1 == 4 && c2 != 0 && ca != 0 || ca+cb >= 6 || ca == 4 && c1 != 0 && cb != 0 {
			p.cardRuns(f, st, s, max(i-8, 0), len(s))
		}
	}
}

// word checks the literal pairs of the aligned word at i.
func (p *prefilter) word(f *Filter, st *Stream, s []byte, i int) {
	end := min(i+8, len(s))
	if end <= st.skip {
		return
	}
	for q := i; q < end && q+1 < len(s); q += 2 {
		u := uint16(s[q]) | uint16(s[q+1])<<8
		if p.tab[u] != litPair {
			continue
		}
		for _, c := range p.cands[p.idx[u]] {
			start := q - c.off
			if start < st.skip || start < 0 || start+len(c.lit.text) > len(s) || !c.lit.matches(s, start) {
				continue
			}
			f.check(st, s, start, c.lit)
		}
	}
}

// cardRuns checks the runs of 6 or more consecutive card pairs through
// s[i:end]: the runs a card number of 13 digits or more makes.
func (p *prefilter) cardRuns(f *Filter, st *Stream, s []byte, i, end int) {
	for q := max(i, (st.skip+1)&^1); q < end; q += 2 {
		if !p.cardPairAt(s, q) {
			continue
		}
		r0, r1 := q, q
		for p.cardPairAt(s, r0-2) {
			r0 -= 2
		}
		for p.cardPairAt(s, r1+2) {
			r1 += 2
		}
		if (r1-r0)/2+1 >= 6 && r0 >= st.skip {
			f.card(st, s, r0, r1+2)
		}
		st.skip = max(st.skip, r1+2)
		q = r1
	}
}

func (p *prefilter) cardPairAt(s []byte, q int) bool {
	return q >= 0 && q+1 < len(s) && p.tab[uint16(s[q])|uint16(s[q+1])<<8] == 1
}

// matches reports whether l sits at s[i:].
func (l *literal) matches(s []byte, i int) bool {
	t := l.text
	if !l.fold {
		return string(s[i:i+len(t)]) == t
	}
	for k := 0; k < len(t); k++ {
		if lower(s[i+k]) != t[k] {
			return false
		}
	}
	return true
}

// check runs the detector of l's family on the literal at s[p:].
func (f *Filter) check(st *Stream, s []byte, p int, l *literal) {
	switch l.fam {
	case famJWT:
		jwt(st, s, p)
	case famAWS:
		awsKeyID(st, s, p, len(l.text))
	case famGitHub:
		githubToken(st, s, p, len(l.text))
	case famGitLab:
		prefixedToken(st, s, p, len(l.text), 20, gitlabChar, detGitLab)
	case famSlack:
		prefixedToken(st, s, p, len(l.text), 10, slackChar, detSlack)
	case famSlackHook:
		slackHook(st, s, p, len(l.text))
	case famPEM:
		pemBlock(st, s, p)
	case famURL:
		urlPassword(st, s, p)
	case famBearer:
		bearer(st, s, p, len(l.text))
	case famKey:
		f.keyValue(st, s, p, len(l.text))
	}
}

type span struct {
	start, end int
	id         detector
	quote      bool // the marker replaces an unquoted JSON value: wrap it in quotes
}

// add records that s[start:end] is a secret found by id; the prefilter
// does not look inside it again.
func (st *Stream) add(start, end int, id detector) {
	st.spans = append(st.spans, span{start: start, end: end, id: id})
	st.skip = max(st.skip, end)
}

// addGeneric records a secret found by its context (a key's name, a URL's
// user info, "Bearer"): the prefilter still looks inside it, so that a
// token a specific detector knows (a JWT, a GitHub token) is named by that
// detector when the spans are merged.
func (st *Stream) addGeneric(start, end int, id detector, quote bool) {
	st.spans = append(st.spans, span{start: start, end: end, id: id, quote: quote})
}
