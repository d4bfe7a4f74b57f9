// The metrics port's HTTP/1.1 as a stream session (docs/protocol.md "metrics"): requests framed
// by Services' HTTPRequestParser, answered in order on a keep-alive connection. `/healthz` is
// answered at once; `/metrics` waits for the metrics queue to render (no further request, nor
// the peer's EOF, is acted on meanwhile), so rendering never runs on the loop. This is also
// the smallest example of a second protocol on the Reactor: a parser, a session, a listener.

import Reactor
import Services

/// What the HTTP session asks of the server. Loop thread only.
protocol MetricsEndpoint: AnyObject {
    /// Why writes are refused now, or nil when the server is healthy.
    func healthProblem() -> String?
    /// The password `/metrics` wants as a bearer token, or nil for none.
    var password: [UInt8]? { get }
    /// Renders the metrics off the loop; `completion` runs on the loop thread with the text.
    func scrape(_ completion: @escaping ([UInt8]) -> Void)
}

/// One metrics-port connection.
final class HTTPStream: StreamSession {
    private var parser = HTTPRequestParser()
    private unowned let endpoint: MetricsEndpoint
    private weak var handler: StreamHandler?
    private weak var connection: Connection?
    /// A peer refused by protected mode: its first request gets 403, then the close.
    let forbidden: Bool
    /// A `/metrics` response is being rendered: nothing else is answered until it is written.
    private var scraping = false
    private var isClosed = false
    /// A bad request was answered: input is dropped until the peer's EOF or the linger timer.
    private var lingering = false
    static let lingerTime: Duration = .seconds(1)

    init(endpoint: MetricsEndpoint, forbidden: Bool) {
        self.endpoint = endpoint
        self.forbidden = forbidden
    }

    func open(_ connection: Connection, handler: StreamHandler) {
        self.handler = handler
        self.connection = connection
    }

    func receive(_ bytes: UnsafeRawBufferPointer) { self.parser.append(bytes) }

    func process(_ connection: Connection, outputLimit: Int) -> ProcessResult {
        while !self.scraping && !self.lingering {
            if connection.pendingOutputBytes >= outputLimit {
                return self.parser.bufferedByteCount > 0 ? .outputFull : .needMoreData
            }
            switch self.parser.next() {
            case .needMoreData:
                return .needMoreData
            case .failed(let error):
                Self.send(connection, Self.response(status: error.status, body: error.reason + "\n", keepAlive: false))
                // Closing with unread input makes the kernel reset the connection, which can
                // destroy the response before the peer reads it: read and drop what the peer
                // still sends, and close at its EOF or after `lingerTime` (a lingering close).
                self.lingering = true
                self.handler?.startTimer(every: Self.lingerTime)
                return .needMoreData
            case .request(let request):
                if !self.answer(request, connection) { return .close }
            }
        }
        return .needMoreData
    }

    var isWaiting: Bool { self.scraping }

    func timerFired(_ connection: Connection) { connection.close() }

    func closed() { self.isClosed = true }

    /// Answers one request. - Returns: whether the connection stays open.
    private func answer(_ request: HTTPRequest, _ connection: Connection) -> Bool {
        if self.forbidden {
            Self.send(connection, Self.response(
                status: 403, body: "reactord is in protected mode: set a password (--requirepass) or start with --protected-mode no\n",
                keepAlive: false))
            return false
        }
        let keepAlive = request.keepAlive
        let isGet = request.method.elementsEqual("GET".utf8)
        if isGet && request.path.elementsEqual("/healthz".utf8) {
            if let problem = self.endpoint.healthProblem() {
                Self.send(connection, Self.response(status: 503, body: problem + "\n", keepAlive: keepAlive))
            } else {
                Self.send(connection, Self.response(status: 200, body: "ok\n", keepAlive: keepAlive))
            }
            return keepAlive
        }
        guard isGet && request.path.elementsEqual("/metrics".utf8) else {
            Self.send(connection, Self.response(status: 404, body: "not found\n", keepAlive: keepAlive))
            return keepAlive
        }
        if let password = self.endpoint.password, !Self.bearerMatches(request.authorization, password) {
            Self.send(connection, Self.response(
                status: 401, body: "unauthorized\n", keepAlive: keepAlive,
                extraHeaders: "WWW-Authenticate: Bearer realm=\"reactord\"\r\n"))
            return keepAlive
        }
        self.scraping = true
        self.endpoint.scrape { [weak self] text in self?.scraped(text, keepAlive: keepAlive) }
        return true
    }

    /// The rendered metrics are back (loop thread): send them, then carry on with the requests
    /// that arrived meanwhile (and with the peer's EOF, if it came).
    private func scraped(_ text: [UInt8], keepAlive: Bool) {
        guard !self.isClosed, let connection = self.connection, connection.state == .open else { return }
        self.scraping = false
        connection.withOutputBuffer {
            $0.append(contentsOf: Self.head(
                status: 200, contentLength: text.count, keepAlive: keepAlive,
                contentType: "text/plain; version=0.0.4; charset=utf-8"))
            $0.append(contentsOf: text)
        }
        if !keepAlive {
            connection.close()
            return
        }
        self.handler?.resume()
        // resume() answers the requests that waited; their responses go out now, not at the
        // peer's next read.
        if connection.state == .open { connection.flush() }
    }

    private static func send(_ connection: Connection, _ bytes: [UInt8]) {
        connection.withOutputBuffer { $0.append(contentsOf: bytes) }
    }

    /// Whether `authorization` is `Bearer <password>` (the scheme in any case, RFC 9110 11.1).
    private static func bearerMatches(_ authorization: [UInt8]?, _ password: [UInt8]) -> Bool {
        let scheme = Array("bearer ".utf8)
        guard let authorization, authorization.count > scheme.count,
              zip(authorization, scheme).allSatisfy({ ($0 | 0x20) == $1 || ($0 == $1) })
        else {
            // Still compare, so a missing header takes as long as a wrong one.
            _ = Password.matches([], password)
            return false
        }
        return Password.matches(authorization[scheme.count...], password)
    }

    static func response(status: Int, body: String, keepAlive: Bool, extraHeaders: String = "") -> [UInt8] {
        Self.head(status: status, contentLength: body.utf8.count, keepAlive: keepAlive,
                  contentType: "text/plain; charset=utf-8", extraHeaders: extraHeaders) + Array(body.utf8)
    }

    private static func head(
        status: Int, contentLength: Int, keepAlive: Bool, contentType: String, extraHeaders: String = ""
    ) -> [UInt8] {
        let reason = switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 431: "Request Header Fields Too Large"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: "Error"
        }
        var head = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(contentLength)\r\n"
        if !keepAlive { head += "Connection: close\r\n" }
        head += extraHeaders + "\r\n"
        return Array(head.utf8)
    }
}
