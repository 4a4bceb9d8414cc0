package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// MongoDB wire protocol constants (https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/).
const (
	headerLen      = 16
	maxMessageLen  = 48_000_000 // what FerretDB accepts (wire.MaxMsgLen)
	opMsg          = 2013
	opCompressed   = 2012
	flagMoreToCome = 1 << 1 // the sender expects no reply to this message
	// replyTimeout bounds how long one write may hold the gate before its connection is cut.
	replyTimeout = 2 * time.Minute
	noRequest    = math.MinInt64 // waitingFor value when no gated request is in flight
)

// readOnly lists the commands FerretDB v1 serves without writing (v1 has no $out or $merge,
// so aggregate only reads). Every other command, including unknown ones, takes the gate.
var readOnly = map[string]bool{
	"find": true, "getMore": true, "aggregate": true, "count": true, "distinct": true,
	"listCollections": true, "listIndexes": true, "listDatabases": true, "killCursors": true,
	"hello": true, "isMaster": true, "ismaster": true, "ping": true, "buildInfo": true,
	"buildinfo": true, "serverStatus": true, "dbStats": true, "dbstats": true,
	"collStats": true, "collstats": true, "dataSize": true, "explain": true, "endSessions": true,
	"connectionStatus": true, "getParameter": true, "getCmdLineOpts": true, "hostInfo": true,
	"whatsmyuri": true, "saslStart": true, "saslContinue": true, "getLog": true,
	"listCommands": true, "currentOp": true, "usersInfo": true, "logout": true,
	"getFreeMonitoringStatus": true, "validate": true,
}

// gate forwards MongoDB wire connections to FerretDB and lets one write command at a time
// through, across all connections: FerretDB v1 writes are "query, then write back by _id", so
// two of them running together lose updates. Holding the gate from a write's request until
// its reply makes every write command run alone, as atomic as it is in MongoDB for a single
// document. Reads pass freely; SQLite itself keeps each statement consistent.
type gate struct {
	backend string // FerretDB's Unix socket
	logger  *slog.Logger
	writes  sync.Mutex
}

// serve accepts connections on ln until ctx is done, then closes ln and every connection.
func (g *gate) serve(ctx context.Context, ln net.Listener) {
	var wg sync.WaitGroup
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		client, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil {
				g.logger.Error("accept failed", "error", err)
			}
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.handle(ctx, client)
		}()
	}
	wg.Wait()
}

// handle proxies one client connection: client->server in this goroutine, server->client in
// another, so replies the client did not ask for (exhaust streams) still flow.
func (g *gate) handle(ctx context.Context, client net.Conn) {
	defer client.Close()
	var d net.Dialer
	server, err := d.DialContext(ctx, "unix", g.backend)
	if err != nil {
		g.logger.Error("cannot reach FerretDB", "error", err)
		return
	}
	defer server.Close()
	stop := context.AfterFunc(ctx, func() { client.Close(); server.Close() })
	defer stop()

	var waitingFor atomic.Int64 // request id of the gated request awaiting its reply
	waitingFor.Store(noRequest)
	replied := make(chan struct{}, 1)
	serverDone := make(chan struct{})

	go func() {
		defer close(serverDone)
		defer client.Close() // unblock the reading side below
		for {
			msg, err := readMessage(server)
			if err != nil {
				return
			}
			responseTo := int64(int32(binary.LittleEndian.Uint32(msg[8:12])))
			if waitingFor.CompareAndSwap(responseTo, noRequest) {
				replied <- struct{}{}
			}
			if _, err = client.Write(msg); err != nil {
				return
			}
		}
	}()

	for {
		msg, err := readMessage(client)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				g.logger.Debug("client read failed", "error", err)
			}
			break
		}
		gated, noReply := classify(msg)
		if !gated {
			if _, err = server.Write(msg); err != nil {
				break
			}
			continue
		}
		if !g.forwardGated(server, msg, noReply, &waitingFor, replied, serverDone) {
			break
		}
	}
	server.Close()
	<-serverDone
}

// forwardGated sends one write under the gate and holds it until the reply arrives (or the
// connection dies, or replyTimeout passes). It reports whether the connection may go on.
func (g *gate) forwardGated(server net.Conn, msg []byte, noReply bool, waitingFor *atomic.Int64,
	replied chan struct{}, serverDone chan struct{},
) bool {
	g.writes.Lock()
	defer g.writes.Unlock()

	requestID := int64(int32(binary.LittleEndian.Uint32(msg[4:8])))
	if !noReply {
		waitingFor.Store(requestID)
	}
	if _, err := server.Write(msg); err != nil {
		return false
	}
	if noReply {
		// Unacknowledged (w:0) writes get no reply to wait for: they are only ordered, not
		// isolated. Nothing in this project uses them.
		return true
	}
	timer := time.NewTimer(replyTimeout)
	defer timer.Stop()
	select {
	case <-replied:
		return true
	case <-serverDone:
		return false
	case <-timer.C:
		g.logger.Error("write got no reply in time: closing its connection", "timeout", replyTimeout)
		return false
	}
}

// readMessage reads one whole wire message (header included).
func readMessage(r io.Reader) ([]byte, error) {
	var header [headerLen]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return nil, err
	}
	n := int32(binary.LittleEndian.Uint32(header[0:4]))
	if n < headerLen || n > maxMessageLen {
		return nil, fmt.Errorf("bad message length %d", n)
	}
	msg := make([]byte, n)
	copy(msg, header[:])
	if _, err := io.ReadFull(r, msg[headerLen:]); err != nil {
		return nil, err
	}
	return msg, nil
}

// classify tells whether a client message must take the gate and whether it expects a reply.
// OP_MSG is gated unless its command (the first key of its body section) is read-only;
// compressed messages are gated as they cannot be read cheaply; legacy OP_QUERY (only the
// first hello of old drivers) passes.
func classify(msg []byte) (gated, noReply bool) {
	switch binary.LittleEndian.Uint32(msg[12:16]) {
	case opMsg:
		if len(msg) < headerLen+4 {
			return true, false
		}
		flags := binary.LittleEndian.Uint32(msg[16:20])
		noReply = flags&flagMoreToCome != 0
		name, ok := commandName(msg[20:])
		return !ok || !readOnly[name], noReply
	case opCompressed:
		return true, false
	default:
		return false, false
	}
}

// commandName finds the body (kind 0) section among the OP_MSG sections and returns the
// name of its first element, which is the command.
func commandName(sections []byte) (string, bool) {
	for len(sections) > 0 {
		kind := sections[0]
		sections = sections[1:]
		if len(sections) < 4 {
			return "", false
		}
		size := int(int32(binary.LittleEndian.Uint32(sections[0:4])))
		if size < 4 || size > len(sections) {
			return "", false
		}
		switch kind {
		case 0: // a BSON document: int32 size, then elements of type byte + cstring name + value
			doc := sections[:size]
			if len(doc) < 6 {
				return "", false
			}
			for i := 5; i < len(doc); i++ {
				if doc[i] == 0 {
					return string(doc[5:i]), true
				}
			}
			return "", false
		case 1: // a document sequence: int32 size (counting itself), identifier, documents
			sections = sections[size:]
		default:
			return "", false
		}
	}
	return "", false
}
