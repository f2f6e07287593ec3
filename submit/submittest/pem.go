package submittest

import "encoding/pem"

// CACertPEM returns the server's throwaway CA certificate in PEM form, for
// programs that read their trusted roots from a file (a command's -ca flag,
// SSL_CERT_FILE).
func (s *Server) CACertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.ca.cert.Raw})
}
