package activator

import (
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/spinscale/spinscale/internal/httpstats"
)

// readerBuffer is the number of reports a stream reader may fall behind by
// before it is dropped: a slow reader never blocks the proxy.
const readerBuffer = 64

// writeTimeout bounds the write of one report to a reader.
const writeTimeout = 10 * time.Second

// hub fans the reports out to every stream reader.
type hub struct {
	mu      sync.Mutex
	readers map[*reader]struct{}
	// onCount is told the number of readers when it changes.
	onCount func(int)
}

type reader struct {
	reports chan httpstats.Report
	dropped chan struct{} // closed when the reader fell behind
}

func newHub(onCount func(int)) *hub {
	return &hub{readers: map[*reader]struct{}{}, onCount: onCount}
}

func (h *hub) add() *reader {
	r := &reader{reports: make(chan httpstats.Report, readerBuffer), dropped: make(chan struct{})}
	h.mu.Lock()
	h.readers[r] = struct{}{}
	h.onCount(len(h.readers))
	h.mu.Unlock()
	return r
}

func (h *hub) remove(r *reader) {
	h.mu.Lock()
	delete(h.readers, r)
	h.onCount(len(h.readers))
	h.mu.Unlock()
}

// publish queues rep for every reader without blocking; a reader whose
// buffer is full is dropped (its stream ends and it reconnects).
func (h *hub) publish(rep httpstats.Report) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for r := range h.readers {
		select {
		case r.reports <- rep:
		default:
			delete(h.readers, r)
			close(r.dropped)
			h.onCount(len(h.readers))
		}
	}
}

// serveStream streams the reports as NDJSON, one flush per report, until
// the client goes, the reader is dropped, or done closes.
func (h *hub) serveStream(w http.ResponseWriter, req *http.Request, done <-chan struct{}, log *zap.Logger) {
	if req.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed: use GET", http.StatusMethodNotAllowed)
		return
	}
	rc := http.NewResponseController(w)
	r := h.add()
	defer h.remove(r)
	w.Header().Set("Content-Type", httpstats.ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		log.Warn("stats stream: flush", zap.Error(err))
		return
	}
	enc := httpstats.NewEncoder(w)
	log.Info("stats stream reader connected", zap.String("remote", req.RemoteAddr))
	for {
		select {
		case rep := <-r.reports:
			// A reader that stops reading must not pin this goroutine.
			_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := enc.Encode(rep); err != nil {
				log.Info("stats stream reader gone", zap.String("remote", req.RemoteAddr), zap.Error(err))
				return
			}
			if err := rc.Flush(); err != nil {
				log.Info("stats stream reader gone", zap.String("remote", req.RemoteAddr), zap.Error(err))
				return
			}
		case <-r.dropped:
			log.Warn("stats stream reader dropped: it fell behind", zap.String("remote", req.RemoteAddr), zap.Int("buffer", readerBuffer))
			return
		case <-req.Context().Done():
			log.Info("stats stream reader disconnected", zap.String("remote", req.RemoteAddr))
			return
		case <-done:
			return
		}
	}
}
