// SocketAddress.isLoopback: what protected mode and the metrics port take for "this machine".

import Reactor
import Testing

extension ReactorTests {
    @Suite struct SocketAddressTests {
        @Test(arguments: ["127.0.0.1", "127.0.0.2", "127.255.255.254", "127.1.2.3", "::1", "::ffff:127.0.0.1",
                          "::ffff:127.9.8.7", "localhost", "[::1]"])
        func loopbackAddresses(host: String) throws {
            #expect(try SocketAddress(host: host, port: 9877).isLoopback)
        }

        @Test(arguments: ["10.200.0.2", "0.0.0.0", "128.0.0.1", "126.255.255.255", "192.168.1.1", "::", "::2",
                          "::ffff:10.0.0.1", "::ffff:128.0.0.1", "::127.0.0.1", "fe80::1", "2001:db8::1",
                          "::1:0:0:0:1"])
        func addressesOutsideLoopback(host: String) throws {
            #expect(try !SocketAddress(host: host, port: 9877).isLoopback)
        }
    }
}
