using Hive.Protos.V1;
using Hive.Wire;
using Polly;
using Polly.Retry;

namespace Hive.Controller.Sandboxes;

/// <summary>
/// The Controller's one resilience pipeline, configured here: waiting for a freshly started (or
/// restarted) Sbxd to report its sandbox running. Sbxd answers "creating" while it builds the
/// rootfs, network namespace and container, and is unreachable for the first moments of its life.
/// </summary>
internal static class Readiness
{
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(50);

    /// <summary>Polls until the status is no longer "creating" (or the caller's token, which carries the create timeout, fires).</summary>
    public static ResiliencePipeline<SandboxStatus> Build(TimeProvider time) =>
        new ResiliencePipelineBuilder<SandboxStatus> { Name = "sbxd-ready", TimeProvider = time }
            .AddRetry(new RetryStrategyOptions<SandboxStatus>
            {
                Name = "sbxd-ready-poll",
                ShouldHandle = new PredicateBuilder<SandboxStatus>()
                    .Handle<RpcException>(ex => ex.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
                    .HandleResult(status => status.State is SandboxState.Creating or SandboxState.Unspecified),
                BackoffType = DelayBackoffType.Constant,
                Delay = PollInterval,
                UseJitter = false,
                MaxRetryAttempts = int.MaxValue,
            })
            .Build();
}
