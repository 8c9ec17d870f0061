package main

import (
	"fmt"
	"math"

	"github.com/wsgrpo/wsgrpo/internal/diskfull"
	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// Memory of a wiring run (train --wiring), measured on a 2-core machine
// with --no-log: about 300 MB peak RSS for 100,000 rows, 1.4 GB for
// 1,000,000 rows in 5,000-row batches, 1.75 GB for them in 100,000-row
// batches, 2.2 GB for 2,000,000; the trajectory log added about 0.4 GB.
// The estimate rounds these up.
const (
	wiringBaseBytes     = 512 << 20 // the process, its NATS server and runners
	wiringRowBytes      = 1 << 10   // per row of the run: its messages in the streams and its id in the exactly-once check
	wiringBatchRowBytes = 4 << 10   // per row of one batch: the copies of a batch in flight through the hops
	wiringLogBytes      = 512 << 20 // the embedded trajectory log
)

// checkWiringFlags refuses --batches, --rows and --timeout values that
// cannot make a wiring run.
func checkWiringFlags(o wiringOptions) error {
	switch {
	case o.Batches < 1 || o.Rows < 1:
		return fmt.Errorf("%w: --batches %d and --rows %d must be at least 1", ErrConfig, o.Batches, o.Rows)
	case o.Timeout <= 0:
		return fmt.Errorf("%w: --timeout %s must be positive", ErrConfig, o.Timeout)
	case o.Rows > math.MaxInt32/o.Batches:
		return fmt.Errorf("%w: --batches %d x --rows %d is more than the %d rows a wiring run counts", ErrConfig, o.Batches, o.Rows, math.MaxInt32)
	}
	return nil
}

// wiringBatchBytes estimates the encoded size of a prompt batch of rows
// rows of the wiring run: a sample of its rows encoded (from the last
// batch, whose ids are the longest), scaled to rows, plus a byte per row
// for each digit the row numbers beyond the sample add to the ids.
func wiringBatchBytes(run string, batches, rows int) (int64, error) {
	n := min(rows, 1000)
	size := func(k int) (int64, error) {
		rec := wiringPrompts(run, batches-1, k)
		defer rec.Release()
		b, err := schemas.Encode(rec)
		return int64(len(b)), err
	}
	whole, err := size(n)
	if err != nil || n == rows {
		return whole, err
	}
	one, err := size(1)
	if err != nil {
		return 0, err
	}
	perRow := float64(whole-one) / float64(n-1)
	perRow += float64(digits(rows-1) - digits(n-1))
	return whole + int64(math.Ceil(perRow*float64(rows-n))), nil
}

func digits(n int) int {
	d := 1
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
}

// checkWiringPayload refuses --rows whose prompt batch cannot be one NATS
// message of at most maxPayload bytes (less the pipeline's header
// reserve), and says the most rows that fit.
func checkWiringPayload(o wiringOptions, run string, maxPayload int64) error {
	limit := maxPayload - pipeline.HeaderReserve
	est, err := wiringBatchBytes(run, o.Batches, o.Rows)
	if err != nil || est <= limit {
		return err
	}
	// The most rows that fit, by bisection on the estimate.
	lo, hi := 1, o.Rows
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if b, err := wiringBatchBytes(run, o.Batches, mid); err == nil && b <= limit {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return fmt.Errorf("%w: --rows %d: a prompt batch of that many rows is about %s, more than one NATS message holds (max_payload %s less %s of headers): pass --rows %d or fewer, and more --batches",
		ErrConfig, o.Rows, diskfull.Bytes(est), diskfull.Bytes(maxPayload), diskfull.Bytes(pipeline.HeaderReserve), lo)
}

// wiringMemory estimates the peak memory of a wiring run.
func wiringMemory(o wiringOptions) uint64 {
	m := uint64(wiringBaseBytes) + uint64(o.Batches)*uint64(o.Rows)*wiringRowBytes + uint64(o.Rows)*wiringBatchRowBytes
	if !o.NoLog {
		m += wiringLogBytes
	}
	return m
}

// checkWiringMemory refuses a wiring run whose estimated memory exceeds
// avail, the memory available to this process (0: unknown, no check),
// and says how many rows would fit.
func checkWiringMemory(o wiringOptions, avail uint64) error {
	need := wiringMemory(o)
	if avail == 0 || need <= avail {
		return nil
	}
	fixed := wiringMemory(wiringOptions{Batches: 0, Rows: o.Rows, NoLog: o.NoLog})
	maxRows := uint64(0)
	if avail > fixed {
		maxRows = (avail - fixed) / wiringRowBytes
	}
	hint := fmt.Sprintf("pass at most %d rows in all (--batches x --rows), e.g. --batches %d --rows %d", maxRows, max(maxRows/uint64(o.Rows), 1), o.Rows)
	if maxRows < uint64(o.Rows) {
		// Not even one batch fits.
		one := wiringMemory(wiringOptions{NoLog: o.NoLog})
		rows := uint64(0)
		if avail > one {
			rows = (avail - one) / (wiringRowBytes + wiringBatchRowBytes)
		}
		hint = fmt.Sprintf("pass --rows %d or fewer", rows)
	}
	return fmt.Errorf("%w: --batches %d x --rows %d: the wiring run would need about %s of memory (about %s a row, and %s a row of one batch), more than the %s available: %s",
		ErrConfig, o.Batches, o.Rows, diskfull.Bytes(int64(need)), diskfull.Bytes(wiringRowBytes), diskfull.Bytes(wiringBatchRowBytes), diskfull.Bytes(int64(avail)), hint)
}
