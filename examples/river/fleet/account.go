package fleet

import (
	"net/url"
	"strings"

	"github.com/portwise/portwise/submit"
)

// Account returns the key under which the limits of the account that
// rawURL (a submit.ParseURL URL) sends as are shared: its host and user,
// lower-cased, "smtp.office365.com/printer@contoso.com". Providers limit
// an account whatever the port, so the port and the query are not part of
// it; the password never is. A URL without a user (an IP-authorised relay)
// gives "host/".
func Account(rawURL string) (string, error) {
	_, host, err := submit.ParseURL(rawURL)
	if err != nil {
		return "", err
	}
	user := ""
	// ParseURL accepted the URL, so its user information, if any, is
	// everything before the last '@' after the scheme, with no '@' left in
	// it, and its user decodes.
	if _, rest, ok := strings.Cut(strings.TrimSpace(rawURL), "://"); ok {
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			u, _, _ := strings.Cut(rest[:at], ":")
			if d, err := url.PathUnescape(u); err == nil {
				user = d
			}
		}
	}
	return strings.ToLower(host) + "/" + strings.ToLower(user), nil
}
