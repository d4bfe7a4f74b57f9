// An open regular file a connection can send with sendfile(2): the reactor only sends it and
// closes it; finding and opening it is the embedder's (reactord's: Sources/Server/FileRoot.swift).

#if canImport(Glibc)
import Glibc
#endif

/// An open regular file whose bytes a ``Connection`` sends with sendfile(2)
/// (``Connection/write(file:offset:count:)``). It owns its descriptor, which is closed when the
/// last reference goes: the caller's, or the connection's once the bytes queued from it are sent
/// (or the connection closes first). Any thread until queued; then loop thread only.
public final class OpenFile {
    let descriptor: Descriptor
    /// The file's size in bytes when it was opened: the end of what can be queued from it.
    public let size: Int

    /// Takes ownership of `descriptor`, an open regular file of `size` bytes (as fstat said).
    public init(adopting descriptor: CInt, size: Int) {
        precondition(descriptor >= 0 && size >= 0, "an open file needs a descriptor and a size")
        self.descriptor = Descriptor(rawValue: descriptor)
        self.size = size
    }

    deinit { Sys.close(self.descriptor) }
}
