// Package report renders decisions for people and programs: the JSON view
// shared by `autoscaler simulate` and `autoscaler run --output json`, and the
// TARGETS column of the tables. It only formats; it decides nothing.
package report
