package bus

import (
	"sync"

	"github.com/ergo-services/ergo/etf"
)

// topicTable is a node's topic -> local subscribers. The bus server alone
// writes it; publishers read it from their own processes, so local fan-out
// never waits on the bus server. Subscriber slices are never modified once
// stored (copy on write): a reader may range over one after unlocking.
type topicTable struct {
	mu     sync.RWMutex
	topics map[string][]etf.Pid
}

func newTopicTable() *topicTable { return &topicTable{topics: map[string][]etf.Pid{}} }

// get returns the subscribers of topic; do not modify.
func (t *topicTable) get(topic string) []etf.Pid {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.topics[topic]
}

// add subscribes pid to topic; false if it already was.
func (t *topicTable) add(topic string, pid etf.Pid) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.topics[topic]
	for _, p := range old {
		if p == pid {
			return false
		}
	}
	t.topics[topic] = appendCopy(old, []etf.Pid{pid})
	return true
}

// remove unsubscribes pid from topic; false if it was not subscribed.
func (t *topicTable) remove(topic string, pid etf.Pid) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.topics[topic]
	next := removeEach(old, []etf.Pid{pid})
	if len(next) == len(old) {
		return false
	}
	if len(next) == 0 {
		delete(t.topics, topic)
	} else {
		t.topics[topic] = next
	}
	return true
}

// byPid inverts the table: each subscriber and its topics.
func (t *topicTable) byPid() map[etf.Pid][]string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := map[etf.Pid][]string{}
	for topic, pids := range t.topics {
		for _, p := range pids {
			out[p] = append(out[p], topic)
		}
	}
	return out
}

// len is the number of topics with subscribers.
func (t *topicTable) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.topics)
}
