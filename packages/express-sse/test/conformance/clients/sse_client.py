"""
An EventSource in Python: the WHATWG HTML algorithm (9.2 Server-sent events) over http.client,
standard library only, for the conformance matrix of @sluice/express-sse.

It speaks JSON lines. Commands on stdin:
    {"cmd": "open", "sid": 1, "url": "http://127.0.0.1:8080/x"}
    {"cmd": "close", "sid": 1}
Reports on stdout, one line each, in the order they happen for a source:
    {"ready": true}                                   once, at start
    {"sid": 1, "kind": "open"}
    {"sid": 1, "kind": "event", "type": "message", "data": "...", "lastEventId": "..."}
    {"sid": 1, "kind": "error", "readyState": 0, "message": "..."}
    {"sid": 1, "kind": "closed"}                      the answer to "close"
End of stdin: every source is closed and the program exits.
"""
import codecs
import http.client
import json
import re
import socket
import sys
import threading
import urllib.parse

CONNECTING, OPEN, CLOSED = 0, 1, 2
DEFAULT_RECONNECTION_TIME_MS = 3000
LINE_END = re.compile(r"[\r\n]")
DIGITS = re.compile(r"[0-9]+\Z")

_out = threading.Lock()


def report(message):
    line = json.dumps(message, ensure_ascii=True)
    with _out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Parser:
    """9.2.6 Interpreting an event stream: decoded text in, dispatched events out."""

    def __init__(self, source):
        self.source = source
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.at_start = True  # one leading U+FEFF is ignored
        self.pending = []  # pieces of the line being read
        self.after_cr = False  # the last character was CR: an LF right after it ends nothing
        self.data = []
        self.event_type = ""
        # The spec starts this buffer empty for each stream; browsers (Chromium, Firefox) and
        # undici carry the source's last event ID string into a new connection instead. No case
        # of the matrix tells the two apart (every resumed stream's first event has an id).
        self.last_event_id = source.last_event_id

    def feed_bytes(self, chunk, final=False):
        self.feed(self.decoder.decode(chunk, final))

    def feed(self, text):
        if self.at_start and text:
            if text[0] == "\ufeff":
                text = text[1:]
            self.at_start = False
        i, n = 0, len(text)
        while i < n:
            if self.after_cr:
                self.after_cr = False
                if text[i] == "\n":
                    i += 1
                    continue
            match = LINE_END.search(text, i)
            if match is None:
                self.pending.append(text[i:])
                return
            j = match.start()
            self.pending.append(text[i:j])
            line = "".join(self.pending)
            self.pending = []
            self.after_cr = text[j] == "\r"
            i = j + 1
            self.line(line)

    def line(self, line):
        if line == "":
            self.dispatch()
        elif line[0] == ":":
            pass  # a comment
        elif ":" in line:
            field, value = line.split(":", 1)
            if value.startswith(" "):
                value = value[1:]
            self.field(field, value)
        else:
            self.field(line, "")

    def field(self, name, value):
        if name == "event":
            self.event_type = value
        elif name == "data":
            self.data.append(value)
            self.data.append("\n")
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry":
            if DIGITS.match(value):
                self.source.reconnection_time = int(value)
        # anything else is ignored

    def dispatch(self):
        self.source.last_event_id = self.last_event_id
        data = "".join(self.data)
        self.data = []
        event_type = self.event_type
        self.event_type = ""
        if data == "":
            return
        if data.endswith("\n"):
            data = data[:-1]
        if self.source.ready_state == CLOSED:
            return
        report(
            {
                "sid": self.source.sid,
                "kind": "event",
                "type": event_type or "message",
                "data": data,
                "lastEventId": self.source.last_event_id,
            }
        )


class Source:
    """9.2.2 The EventSource interface, and 9.2.3 processing model, for one URL."""

    def __init__(self, sid, url):
        self.sid = sid
        self.url = urllib.parse.urlsplit(url)
        self.ready_state = CONNECTING
        self.last_event_id = ""
        self.reconnection_time = DEFAULT_RECONNECTION_TIME_MS
        self.closed = threading.Event()
        self.lock = threading.Lock()
        self.conn = None
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.closed.is_set():
            outcome, why = self.fetch_once()
            if self.closed.is_set():
                return
            if outcome == "fail":
                # "Fail the connection": CLOSED, one error event, no reconnection.
                self.ready_state = CLOSED
                report({"sid": self.sid, "kind": "error", "readyState": CLOSED, "message": why})
                return
            # "Reestablish the connection": CONNECTING, an error event, wait, fetch again.
            self.ready_state = CONNECTING
            message = {"sid": self.sid, "kind": "error", "readyState": CONNECTING}
            if why:
                message["message"] = why
            report(message)
            if self.closed.wait(self.reconnection_time / 1000):
                return

    def fetch_once(self):
        """One request: ("reconnect", why) after a network error or the end of the body,
        ("fail", why) for a response that is not an event stream."""
        host = self.url.hostname
        port = self.url.port or 80
        target = self.url.path or "/"
        if self.url.query:
            target += "?" + self.url.query
        try:
            conn = http.client.HTTPConnection(host, port)
            with self.lock:
                if self.closed.is_set():
                    return "reconnect", None
                self.conn = conn
            conn.putrequest("GET", target, skip_accept_encoding=True)
            conn.putheader("Accept", "text/event-stream")
            conn.putheader("Cache-Control", "no-store")
            if self.last_event_id != "":
                # 9.2.3: the last event ID string, encoded as UTF-8.
                conn.putheader("Last-Event-ID", self.last_event_id.encode("utf-8"))
            conn.endheaders()
            res = conn.getresponse()
        except (OSError, http.client.HTTPException) as error:
            return "reconnect", describe(error)
        content_type = res.getheader("Content-Type", "")
        essence = content_type.split(";", 1)[0].strip().lower()
        if res.status != 200 or essence != "text/event-stream":
            res.close()
            conn.close()
            return "fail", "HTTP %d %s" % (res.status, content_type)
        # Announce the connection.
        self.ready_state = OPEN
        report({"sid": self.sid, "kind": "open"})
        parser = Parser(self)
        why = None
        try:
            while True:
                chunk = res.read1(65536)
                if not chunk:
                    break
                parser.feed_bytes(chunk)
        except (OSError, http.client.HTTPException, ValueError) as error:
            why = describe(error)
        # The end of the body: whatever is pending (an incomplete event) is discarded.
        conn.close()
        return "reconnect", why

    def close(self):
        with self.lock:
            self.closed.set()
            self.ready_state = CLOSED
            conn = self.conn
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(5)
        report({"sid": self.sid, "kind": "closed"})


def describe(error):
    return "%s: %s" % (type(error).__name__, error)


def main():
    sources = {}
    report({"ready": True})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        command = json.loads(line)
        if command["cmd"] == "open":
            sources[command["sid"]] = Source(command["sid"], command["url"])
        elif command["cmd"] == "close":
            source = sources.pop(command["sid"], None)
            if source is not None:
                source.close()
            else:
                report({"sid": command["sid"], "kind": "closed"})
    for source in list(sources.values()):
        source.close()


if __name__ == "__main__":
    main()
