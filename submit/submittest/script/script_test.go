package script

import "testing"

func TestReply(t *testing.T) {
	tests := []struct {
		code  int
		lines []string
		want  string
	}{
		{250, []string{"ok"}, "250 ok\r\n"},
		{250, []string{"mail.test", "PIPELINING", "STARTTLS"}, "250-mail.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"},
		{334, nil, "334 \r\n"},
		{1, []string{"odd"}, "001 odd\r\n"},
	}
	for _, tt := range tests {
		if got := Reply(tt.code, tt.lines...); got != tt.want {
			t.Errorf("Reply(%d, %q) = %q, want %q", tt.code, tt.lines, got, tt.want)
		}
	}
}
