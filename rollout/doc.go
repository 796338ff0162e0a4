// Package rollout runs phased rollouts on top of the domain rules in package
// koshin: it is the part of the update server that decides, over time,
// which device is offered which release.
//
// Three pieces share one Store:
//
//   - Service carries out what operators ask (create, start, pause, resume,
//     abort, advance, approve) and what devices report (events), and answers
//     the check-in path's question "what should this device install now?"
//     (Instruction). Every state change it makes is one store call followed
//     by an audit entry naming the principal (CCDS STS14).
//   - Engine.Tick is the background pass that marks silent devices failed,
//     halts rollouts at their failure threshold (cancelling devices not yet
//     started), advances phases after their soak time, completes rollouts
//     and assigns the next devices within the maintenance window and the
//     start rate limit (CCDS UPE08, EN 303 645 5.9-3).
//   - Notifier receives failed installs, rollbacks and halts (CCDS UPD10);
//     Outbox queues and retries deliveries so a slow or broken receiver
//     never holds up the engine or a device request.
//
// The engine keeps no state of its own between ticks: every decision is
// recomputed from the store at the tick's instant, and every change is a
// single store call that is conditional on the state it was decided from
// (a phase number, a rollout state, an assignment state). A crash between
// two calls therefore leaves a consistent store that the next tick
// continues from, and two replicas ticking at once cannot apply the same
// change twice: the loser of each race gets ECONFLICT and moves on.
//
// Audit entries and notifications follow the change they report, as
// separate calls: the store has no way yet to append an audit entry in the
// change's own transaction. A crash in between loses that entry or
// notification, never the change; device events themselves stay in the
// append-only event history.
//
// Time and randomness are injected (Now, Seed) so that tests drive the
// engine with a fake clock and reproducible plans.
package rollout
