package layerstest

import (
	"fmt"
	"testing"
)

// recorder is a testing.TB that records failures instead of reporting them.
type recorder struct {
	testing.TB
	errs []string
}

type stopRecording struct{}

func (r *recorder) Helper()                   {}
func (r *recorder) Log(...any)                {}
func (r *recorder) Logf(string, ...any)       {}
func (r *recorder) Error(a ...any)            { r.errs = append(r.errs, fmt.Sprint(a...)) }
func (r *recorder) Errorf(f string, a ...any) { r.errs = append(r.errs, fmt.Sprintf(f, a...)) }
func (r *recorder) Fatal(a ...any)            { r.Error(a...); panic(stopRecording{}) }
func (r *recorder) Fatalf(f string, a ...any) { r.Errorf(f, a...); panic(stopRecording{}) }
func (r *recorder) FailNow()                  { panic(stopRecording{}) }

// Failures runs f with a testing.TB that records failures instead of failing t, and returns the failure
// messages (a Fatal stops f). Use it to assert that a check fails, for example to pin a known Gorgonia bug
// so that a fix shows up as a test failure:
//
//	if len(layerstest.Failures(t, func(tb testing.TB) { layerstest.SecondOrderCheck(tb, ...) })) == 0 {
//		t.Error("G.Slice second order is right now: update the layers package doc")
//	}
func Failures(t testing.TB, f func(tb testing.TB)) []string {
	r := &recorder{TB: t}
	func() {
		defer func() {
			if e := recover(); e != nil {
				if _, ok := e.(stopRecording); !ok {
					panic(e)
				}
			}
		}()
		f(r)
	}()
	return r.errs
}
