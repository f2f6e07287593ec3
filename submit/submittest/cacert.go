package submittest

import "encoding/pem"

// CACertPEM returns the certificate of the server's throwaway CA in PEM, for
// clients that only trust the system roots (net/smtp, submit.SendMail):
// write it to a file and point SSL_CERT_FILE at that file before the
// process first loads the system roots, which Go does once per process.
func (s *Server) CACertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.ca.Cert.Raw})
}
