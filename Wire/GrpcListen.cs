namespace Hive.Wire;

/// <summary>Where a <see cref="GrpcServer"/> listens.</summary>
public abstract record GrpcListen
{
    private GrpcListen()
    {
    }

    /// <summary>Binds a Unix socket at <paramref name="Path"/> (a stale socket file is replaced by Kestrel).</summary>
    public static GrpcListen UnixSocket(string path) => new UnixSocketEndpoint(path);

    /// <summary>Uses an already bound and listening socket inherited as file descriptor <paramref name="fd"/>.</summary>
    public static GrpcListen Handle(ulong fd) => new HandleEndpoint(fd);

    /// <summary>Listens on 127.0.0.1 (port 0 = any free port); for tests and interop only.</summary>
    public static GrpcListen Loopback(int port = 0) => new LoopbackEndpoint(port);

    internal sealed record UnixSocketEndpoint(string Path) : GrpcListen;

    internal sealed record HandleEndpoint(ulong Fd) : GrpcListen;

    internal sealed record LoopbackEndpoint(int Port) : GrpcListen;
}
