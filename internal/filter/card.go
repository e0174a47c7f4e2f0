package filter

// cardForms are the ways card numbers are grouped when written with
// spaces or dashes: 4-4-4-4, 4-4-4-4-3 (19 digits), 4-6-5 (American
// Express), 4-6-4 (Diners Club).
var cardForms = [][]int{{4, 4, 4, 4, 3}, {4, 4, 4, 4}, {4, 6, 5}, {4, 6, 4}}

// card checks the run of digits (with single spaces or dashes between
// them) that the word s[i:end] is part of: a number of 13 to 19 digits,
// written whole or in one of cardForms, with a card network's prefix and
// length and a valid Luhn check digit, and not glued to letters or other
// digits, is a card number.
func (f *Filter) card(st *Stream, s []byte, i, end int) {
	d := -1
	for k := i; k < end; k++ {
		if isDigit(s[k]) {
			d = k
			break
		}
	}
	if d < 0 {
		return
	}
	a := d
	for a > 0 {
		if isDigit(s[a-1]) {
			a--
		} else if a >= 2 && isCardSep(s[a-1]) && isDigit(s[a-2]) {
			a -= 2
		} else {
			break
		}
	}
	b := d + 1
	for b < len(s) {
		if isDigit(s[b]) {
			b++
		} else if b+1 < len(s) && isCardSep(s[b]) && isDigit(s[b+1]) {
			b += 2
		} else {
			break
		}
	}
	st.skip = max(st.skip, b) // the rest of the run was judged here
	if b-a < 13 || a < st.spanEnd() {
		return
	}
	var groups [32][2]int
	ng := 0
	for k := a; k < b && ng < len(groups); k++ {
		gs := k
		for k < b && isDigit(s[k]) {
			k++
		}
		groups[ng] = [2]int{gs, k}
		ng++
	}
	var digits [19]byte
	for g := 0; g < ng; g++ {
		gs, ge := groups[g][0], groups[g][1]
		if n := ge - gs; n >= 13 && n <= 19 {
			if cardEdges(s, gs, ge) && cardNumber(s[gs:ge]) {
				st.add(gs, ge, detCreditCard)
				if jsonNumber(s, gs, ge) {
					st.spans[len(st.spans)-1].quote = true
				}
			}
			continue
		}
		if ge-gs != 4 {
			continue
		}
	forms:
		for _, form := range cardForms {
			if g+len(form) > ng {
				continue
			}
			sep := s[groups[g][1]]
			nd := 0
			for k, want := range form {
				g0, g1 := groups[g+k][0], groups[g+k][1]
				if g1-g0 != want || k > 0 && s[g0-1] != sep {
					continue forms
				}
				nd += copy(digits[nd:], s[g0:g1])
			}
			last := groups[g+len(form)-1][1]
			if cardEdges(s, gs, last) && cardNumber(digits[:nd]) {
				st.add(gs, last, detCreditCard)
				g += len(form) - 1
				break
			}
		}
	}
}

// jsonNumber reports whether s[a:b] sits where a JSON value does
// ("pan":4111…,), so that the marker replacing it must be quoted.
func jsonNumber(s []byte, a, b int) bool {
	i := a - 1
	for i >= 0 && s[i] == ' ' {
		i--
	}
	j := b
	for j < len(s) && s[j] == ' ' {
		j++
	}
	return i >= 0 && (s[i] == ':' || s[i] == '[' || s[i] == ',') &&
		j < len(s) && (s[j] == ',' || s[j] == '}' || s[j] == ']')
}

// spanEnd is where the last span found ends.
func (st *Stream) spanEnd() int {
	if len(st.spans) == 0 {
		return 0
	}
	return st.spans[len(st.spans)-1].end
}

// cardEdges reports whether s[a:b] stands alone: not part of a word, of a
// longer number or of a decimal, nor a phone number (+…).
func cardEdges(s []byte, a, b int) bool {
	if a > 0 {
		c := s[a-1]
		if isAlnum(c) || c == '_' || c == '+' || c == '.' && a >= 2 && isDigit(s[a-2]) {
			return false
		}
	}
	if b < len(s) {
		c := s[b]
		if isAlnum(c) || c == '_' || c == '.' && b+1 < len(s) && isDigit(s[b+1]) {
			return false
		}
	}
	return true
}

// cardNumber reports whether the digits d have a card network's prefix
// and length, and a valid Luhn check digit.
func cardNumber(d []byte) bool {
	n := len(d)
	p2 := int(d[0]-'0')*10 + int(d[1]-'0')
	p3 := p2*10 + int(d[2]-'0')
	p4 := p3*10 + int(d[3]-'0')
	var ok bool
	switch {
	case d[0] == '4': // Visa
		ok = n == 13 || n == 16 || n == 19
	case p2 >= 51 && p2 <= 55 || p4 >= 2221 && p4 <= 2720: // Mastercard
		ok = n == 16
	case p2 == 34 || p2 == 37: // American Express
		ok = n == 15
	case p4 == 6011 || p2 == 65 || p3 >= 644 && p3 <= 649: // Discover
		ok = n >= 16
	case p3 >= 300 && p3 <= 305 || p2 == 36 || p2 == 38 || p2 == 39: // Diners Club
		ok = n >= 14
	case p4 >= 3528 && p4 <= 3589: // JCB
		ok = n >= 16
	case p2 == 62: // UnionPay
		ok = n >= 16
	}
	return ok && luhn(d)
}

func luhn(d []byte) bool {
	sum := 0
	for i := len(d) - 1; i >= 0; i -= 2 {
		sum += int(d[i] - '0')
		if i > 0 {
			v := int(d[i-1]-'0') * 2
			if v > 9 {
				v -= 9
			}
			sum += v
		}
	}
	return sum%10 == 0
}
