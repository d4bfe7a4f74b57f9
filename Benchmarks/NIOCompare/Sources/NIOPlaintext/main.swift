// SwiftNIO NIOHTTP1 plaintext server on one loop thread, TechEmpower's shape: GET /plaintext
// answers "Hello, World!" with Content-Length, Content-Type, Server and Date; anything else 404.
// Usage: NIOPlaintext PORT
import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix

final class PlaintextHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    static let body = ByteBuffer(string: "Hello, World!")

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = self.unwrapInboundIn(data) else { return }
        let found = head.method == .GET && head.uri == "/plaintext"
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain")
        headers.add(name: "Server", value: "nio")
        headers.add(name: "Date", value: HTTPDate.now)
        headers.add(name: "Content-Length", value: found ? "13" : "0")
        let response = HTTPResponseHead(version: head.version, status: found ? .ok : .notFound, headers: headers)
        context.write(self.wrapOutboundOut(.head(response)), promise: nil)
        if found { context.write(self.wrapOutboundOut(.body(.byteBuffer(Self.body))), promise: nil) }
        context.write(self.wrapOutboundOut(.end(nil)), promise: nil)
    }
    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
}

/// The Date header's text, recomputed at most once a second (as TechEmpower entries do).
enum HTTPDate {
    nonisolated(unsafe) static var cached = ""
    nonisolated(unsafe) static var cachedSecond = 0
    static var now: String {
        var t = time(nil)
        if Int(t) != cachedSecond {
            cachedSecond = Int(t)
            var tm = tm()
            gmtime_r(&t, &tm)
            var buffer = [CChar](repeating: 0, count: 64)
            let n = strftime(&buffer, 64, "%a, %d %b %Y %H:%M:%S GMT", &tm)
            cached = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return cached
    }
}

let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 7600
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let channel = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.pipeline.configureHTTPServerPipeline(withPipeliningAssistance: true).flatMap {
            channel.pipeline.addHandler(PlaintextHandler())
        }
    }
    .bind(host: "127.0.0.1", port: port).wait()
print("NIOPlaintext: listening on \(channel.localAddress!)")
try channel.closeFuture.wait()
