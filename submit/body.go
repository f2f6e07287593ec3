package submit

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// maxLineBytes is RFC 5321's limit on a text line without its CRLF.
const maxLineBytes = 998

// knownSize is the size of the message as SIZE= declares it (RFC 1870: its
// octets after line-ending normalisation, without DATA's dot-stuffing or
// terminator), when msg is held in memory (a *bytes.Reader,
// *bytes.Buffer or *strings.Reader): it is exactly what the server counts,
// and what BDAT sends. The reader is not consumed.
func knownSize(r io.Reader) (int64, bool) {
	var (
		ra io.ReaderAt
		n  int64
	)
	switch v := r.(type) {
	case *bytes.Reader:
		ra, n = v, v.Size()-int64(v.Len())
		return wireSize(io.NewSectionReader(ra, n, int64(v.Len())))
	case *strings.Reader:
		ra, n = v, v.Size()-int64(v.Len())
		return wireSize(io.NewSectionReader(ra, n, int64(v.Len())))
	case *bytes.Buffer:
		return wireSize(bytes.NewReader(v.Bytes()))
	}
	return 0, false
}

// wireSize counts the normalised octets of r without keeping them. A line
// too long to send is left for the send itself to refuse.
func wireSize(r io.Reader) (int64, bool) {
	dw := newBDATWriter(discard{})
	buf := make([]byte, 2048)
	for {
		n, err := r.Read(buf)
		if _, werr := dw.Write(buf[:n]); werr != nil {
			return 0, false
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, false
		}
	}
	if dw.Close() != nil {
		return 0, false
	}
	return dw.size(), true
}

// discard is a byteWriter that keeps nothing.
type discard struct{}

func (discard) Write(p []byte) (int, error)       { return len(p), nil }
func (discard) WriteByte(byte) error              { return nil }
func (discard) WriteString(s string) (int, error) { return len(s), nil }

// byteWriter is where a dataWriter writes: the connection's *bufio.Writer
// (DATA, or BDAT of a known size) or a chunk's *bytes.Buffer.
type byteWriter interface {
	io.Writer
	io.ByteWriter
	io.StringWriter
}

// dataWriter streams a message body: it turns bare CR and bare LF into
// CRLF, refuses lines longer than SMTP allows, and on Close ends the last
// line. For DATA it also dot-stuffs lines that start with "." and writes
// the terminator; for BDAT (RFC 3030) it does neither: the chunk's length
// tells the server where the message ends.
type dataWriter struct {
	w       byteWriter
	bdat    bool
	bol     bool // at the beginning of a line
	cr      bool // the previous byte was a CR not yet known to be bare
	line    int  // current line number, from 1
	col     int  // bytes on the current line as sent, stuffing included
	n       int64
	stuffed int64 // dots added by dot-stuffing
	done    bool  // Close wrote the terminator
	err     error
}

func newDataWriter(w byteWriter) *dataWriter {
	return &dataWriter{w: w, bol: true, line: 1}
}

func newBDATWriter(w byteWriter) *dataWriter {
	return &dataWriter{w: w, bdat: true, bol: true, line: 1}
}

// size is the message's size as SIZE= counts it: what was written,
// without dot-stuffing and the terminator.
func (d *dataWriter) size() int64 {
	n := d.n - d.stuffed
	if d.done && !d.bdat {
		n -= int64(len(".\r\n"))
	}
	return n
}

func (d *dataWriter) newline() error {
	if _, err := d.w.WriteString("\r\n"); err != nil {
		d.err = err
		return err
	}
	d.n += 2
	d.bol, d.line, d.col = true, d.line+1, 0
	return nil
}

func (d *dataWriter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n := len(p)
	for len(p) > 0 {
		b := p[0]
		if d.cr {
			d.cr = false
			if err := d.newline(); err != nil {
				return n - len(p), err
			}
			if b == '\n' {
				p = p[1:]
				continue
			}
		}
		switch b {
		case '\r':
			d.cr = true
			p = p[1:]
			continue
		case '\n':
			if err := d.newline(); err != nil {
				return n - len(p), err
			}
			p = p[1:]
			continue
		}
		if d.bol && b == '.' && !d.bdat {
			if err := d.w.WriteByte('.'); err != nil {
				d.err = err
				return n - len(p), err
			}
			d.col++
			d.n++
			d.stuffed++
		}
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			i = len(p)
		}
		if d.col+i > maxLineBytes {
			d.err = fmt.Errorf("%w: line %d is longer than %d bytes; encode the body (quoted-printable or base64) before sending", ErrLineTooLong, d.line, maxLineBytes)
			return n - len(p), d.err
		}
		if _, err := d.w.Write(p[:i]); err != nil {
			d.err = err
			return n - len(p), err
		}
		d.col += i
		d.n += int64(i)
		d.bol = false
		p = p[i:]
	}
	return n, nil
}

// Close ends the message: a final CRLF when missing, then, for DATA,
// ".\r\n".
func (d *dataWriter) Close() error {
	if d.err != nil {
		return d.err
	}
	if d.cr || !d.bol {
		d.cr = false
		if err := d.newline(); err != nil {
			return err
		}
	}
	d.done = true
	if d.bdat {
		return nil
	}
	_, err := d.w.WriteString(".\r\n")
	d.n += 3
	return err
}
