using Microsoft.AspNetCore.Http.Features;

namespace Hive.Controller.Forwarding;

/// <summary>
/// <see cref="MeteredUpgradeFeature"/> for a WebSocket over HTTP/2 (RFC 8441 extended CONNECT):
/// YARP accepts the stream through this feature, so its frames are counted the same way.
/// </summary>
internal sealed class MeteredConnectFeature(IHttpExtendedConnectFeature inner, WebSocketFrameMeter fromCaller, WebSocketFrameMeter toCaller) : IHttpExtendedConnectFeature
{
    public bool IsExtendedConnect => inner.IsExtendedConnect;

    public string? Protocol => inner.Protocol;

    public async ValueTask<Stream> AcceptAsync() => new ObservedStream(await inner.AcceptAsync(), fromCaller.Observe, toCaller.Observe);
}
