namespace Hive.Wire;

/// <summary>Per-call options of a client call.</summary>
/// <param name="Timeout">Deadline relative to the start of the call; sent as <c>grpc-timeout</c> and enforced locally. Null = none.</param>
/// <param name="CancellationToken">Cancels the call (the server sees RST_STREAM and cancels its handler).</param>
public readonly record struct CallOptions(TimeSpan? Timeout = null, CancellationToken CancellationToken = default);
