// Package fleet holds every process that sends as one account to that
// account's limits together, through the PostgreSQL database they share.
// Providers limit an account, not a process: Microsoft 365 allows three
// sessions and 30 messages a minute per mailbox, Gmail a daily quota, SES a
// rate per second. A submit.Mailer keeps to such limits inside its
// process; three processes each keeping to them open three times the
// sessions and send three times the rate.
//
// Three limits are shared, per account (Account: the SMTP URL's host and
// user), each in a table next to River's:
//
//   - A cap on sessions: every TCP connection takes a slot of the account
//     first (Dialer, for submit.Dialer.NetDialer), a row leased for a
//     while and renewed while the connection is open, so that a killed
//     process's slots come back after the lease.
//   - A rate: every send takes a turn in one schedule row of the account,
//     spaced as Mailer.RateLimit spaces one process's sends (Send).
//   - A pause: a quota reply ("550 5.4.5 Daily user sending limit
//     exceeded", Classify) pauses the account for every process until the
//     limit can have reset, then sending resumes by itself (Send).
//
// A send the limits hold back gets a *HoldError, having sent nothing:
// mailjob snoozes its job, which neither fails nor uses an attempt. In
// order, with a Mailer that retries nothing itself, so that every attempt
// takes a turn:
//
//	limits, err := fleet.New(ctx, fleet.Config{Pool: pool, Account: account,
//		Sessions: 3, Rate: 30, Interval: time.Minute})
//	defer limits.Close() // after the Mailer's Close
//	d.NetDialer = limits.Dialer(nil)
//	m := &submit.Mailer{Dialer: d, Host: host, MaxTries: -1}
//	defer m.Close()
//	res, err := limits.Send(ctx, func(ctx context.Context) (*submit.SendResult, error) {
//		return m.SendWith(ctx, from, to, bytes.NewReader(msg), nil)
//	})
//	var hold *fleet.HoldError
//	if errors.As(err, &hold) {
//		// try again after hold.Wait
//	}
//
// ReadStatus reads what the tables hold (mailworker status prints it).
package fleet
