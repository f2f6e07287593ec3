package bdat

import "testing"

func TestParse(t *testing.T) {
	tests := []struct {
		line     string
		size     int64
		last, ok bool
	}{
		{"BDAT 125 LAST", 125, true, true},
		{"bdat 0 last", 0, true, true},
		{"BDAT 1048576", 1048576, false, true},
		{"BDAT  7 \tLAST", 7, true, true},
		{"BDAT", 0, false, false},
		{"BDAT 5 FIRST", 0, false, false},
		{"BDAT 5 LAST X", 0, false, false},
		{"BDAT -1 LAST", 0, false, false},
		{"BDAT 0x10", 0, false, false},
		{"BDAT 99999999999999999999", 0, false, false},
		{"DATA", 0, false, false},
		{"MAIL FROM:<BDAT 5>", 0, false, false},
	}
	for _, tt := range tests {
		size, last, ok := Parse(tt.line)
		if size != tt.size || last != tt.last || ok != tt.ok {
			t.Errorf("Parse(%q) = %d, %v, %v; want %d, %v, %v", tt.line, size, last, ok, tt.size, tt.last, tt.ok)
		}
	}
}
