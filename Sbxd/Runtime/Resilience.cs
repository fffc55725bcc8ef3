using Hive.Wire;
using Polly;
using Polly.Retry;

namespace Hive.Sbxd.Runtime;

/// <summary>Sbxd's retry and timeout policies, named and configured in one place.</summary>
internal static class Resilience
{
    /// <summary>Until the agent answers Ping: it is starting (the .NET runtime, Kestrel) inside the fresh container.</summary>
    public static readonly ResiliencePipeline AgentReady = new ResiliencePipelineBuilder { Name = "agent-ready" }
        .AddTimeout(TimeSpan.FromSeconds(30))
        .AddRetry(new RetryStrategyOptions
        {
            Name = "agent-ready-poll",
            ShouldHandle = new PredicateBuilder().Handle<RpcException>(),
            BackoffType = DelayBackoffType.Constant,
            Delay = TimeSpan.FromMilliseconds(20),
            UseJitter = false,
            MaxRetryAttempts = int.MaxValue,
        })
        .Build();

    /// <summary>Until a sandbox's cgroups are gone: their last processes take a moment to exit after SIGKILL.</summary>
    public static readonly ResiliencePipeline CgroupRemoval = new ResiliencePipelineBuilder { Name = "cgroup-removal" }
        .AddRetry(new RetryStrategyOptions
        {
            Name = "cgroup-removal-retry",
            ShouldHandle = new PredicateBuilder().Handle<IOException>(),
            BackoffType = DelayBackoffType.Constant,
            Delay = TimeSpan.FromMilliseconds(100),
            UseJitter = false,
            MaxRetryAttempts = 50,
        })
        .Build();
}
