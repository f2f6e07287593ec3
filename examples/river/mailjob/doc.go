// Package mailjob sends mail durably from a River job queue
// (github.com/riverqueue/river) through a portwise submit.Mailer.
//
// A message becomes a job (Args, made by NewArgs) in River's database,
// an embedded SQLite file or PostgreSQL (Open); Worker sends it and maps
// portwise's classification of the outcome onto River's: a temporary
// failure is retried with River's backoff, a permanent one cancels the job
// with the reason, an outcome that is unknown (the message may have been
// delivered) cancels it with an error saying so, and recipients that
// accepted the message are never sent it again (Progress). On PostgreSQL,
// Worker.Limits holds every send to limits the worker processes of an
// account share (package fleet), snoozing the jobs they hold back. The
// program in cmd/mailworker runs the worker, enqueues test messages and
// shows the queue's state.
package mailjob
