using Microsoft.AspNetCore.Http.Features;

namespace Hive.Controller.Forwarding;

/// <summary>
/// The server's upgrade (the WebSocket handshake's 101) with the upgraded connection metered: what
/// the caller sends is read through <paramref name="fromCaller"/>, what it receives written through
/// <paramref name="toCaller"/>. YARP upgrades through this feature, so the frames it relays are
/// counted without YARP knowing.
/// </summary>
internal sealed class MeteredUpgradeFeature(IHttpUpgradeFeature inner, WebSocketFrameMeter fromCaller, WebSocketFrameMeter toCaller) : IHttpUpgradeFeature
{
    public bool IsUpgradableRequest => inner.IsUpgradableRequest;

    public async Task<Stream> UpgradeAsync() => new ObservedStream(await inner.UpgradeAsync(), fromCaller.Observe, toCaller.Observe);
}
