package rules

// IDPattern is the pattern of board ids and entity ids.
const IDPattern = `^[A-Za-z0-9_-]{1,64}$`

// ValidID reports whether s matches IDPattern.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
