using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Console;

namespace Hive.Agent.Init;

/// <summary>How PID 1's web host differs from an ordinary one.</summary>
internal static class InitHost
{
    public static void Configure(WebApplicationBuilder builder)
    {
        // No configuration from files or the environment: the default sources read appsettings.json and
        // every environment variable, and the sandbox must not be able to add a Kestrel endpoint, a
        // certificate to load or a log level to PID 1. Everything the agent needs is set in code.
        builder.Configuration.Sources.Clear();

        // No console lifetime: it turns SIGTERM, SIGINT and SIGQUIT into a shutdown (see StopSignals).
        builder.Services.AddSingleton<IHostLifetime, InitLifetime>();

        // stdout/stderr is a pipe Sbxd drains into a size-capped log. Should it ever stall, log lines
        // are dropped instead of blocking the request that logs them.
        builder.Services.Configure<ConsoleLoggerOptions>(o =>
        {
            o.QueueFullMode = ConsoleLoggerQueueFullMode.DropWrite;
            o.MaxQueueLength = 1024;
        });
    }

    /// <summary>A lifetime with no signal handling: the host runs until the process is killed.</summary>
    private sealed class InitLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
