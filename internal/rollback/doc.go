// Package rollback holds runrollback's domain: the types that describe a Cloud Run
// service and its traffic split (Service, Revision, Target, Snapshot), the small
// interfaces the decision code consumes, and the drill, guard, restore and recover
// state machines built on them.
//
// It imports the standard library only. Wire types (runpb) stay in package cloudrun;
// HTTP stays in package probe; rendering stays in package report.
package rollback
