// SwiftNIO echo server on one loop thread: every byte read is written back, flushed once per
// read burst (channelReadComplete), as the Reactor echo flushes once per loop iteration.
// Usage: NIOEcho PORT
import NIOCore
import NIOPosix

final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }
    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
}

let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 7500
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let channel = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
    }
    .bind(host: "127.0.0.1", port: port).wait()
print("NIOEcho: listening on \(channel.localAddress!)")
try channel.closeFuture.wait()
