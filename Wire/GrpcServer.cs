using System.Net;
using Google.Protobuf;
using Hive.Wire.Internal;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Hive.Wire;

/// <summary>
/// A gRPC server without Grpc.AspNetCore (not in our package registry): Kestrel speaking
/// HTTP/2 only (prior knowledge — h2c would otherwise fall back to HTTP/1.1), with handlers
/// mapped by method path.
/// </summary>
public static class GrpcServer
{
    /// <summary>Creates a Kestrel application listening on <paramref name="listen"/>; map methods, then start it.</summary>
    public static WebApplication Create(GrpcListen listen, Action<WebApplicationBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(listen);
        // The content root is the program's own directory, not the working directory: the default
        // host reads appsettings.json from the content root and, to reload it, watches that whole
        // tree (on Linux an inotify walk of every directory below). hive-agent runs with its working
        // directory in the sandbox's root, which the sandbox owns and may fill with directories.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(options =>
        {
            options.AddServerHeader = false;
            options.Limits.MaxRequestBodySize = null;         // uploads stream through; size is the caller's business
            options.Limits.MinRequestBodyDataRate = null;     // long-lived client streams may idle
            options.Limits.MinResponseDataRate = null;        // so may server streams (events)
            options.Limits.Http2.MaxStreamsPerConnection = 1024;
            options.Limits.Http2.InitialConnectionWindowSize = 8 * 1024 * 1024;
            options.Limits.Http2.InitialStreamWindowSize = 4 * 1024 * 1024;
            switch (listen)
            {
                case GrpcListen.UnixSocketEndpoint unix:
                    DeleteStaleSocket(unix.Path);
                    options.ListenUnixSocket(unix.Path, l => l.Protocols = HttpProtocols.Http2);
                    break;
                case GrpcListen.HandleEndpoint handle:
                    options.ListenHandle(handle.Fd, l => l.Protocols = HttpProtocols.Http2);
                    break;
                case GrpcListen.LoopbackEndpoint loopback:
                    options.Listen(IPAddress.Loopback, loopback.Port, l => l.Protocols = HttpProtocols.Http2);
                    break;
            }
        });
        configure?.Invoke(builder);
        return builder.Build();
    }

    /// <summary>The TCP port a <see cref="GrpcListen.Loopback"/> server got, once started.</summary>
    public static int GetLoopbackPort(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new Uri(address).Port;
    }

    public static IEndpointRouteBuilder MapUnary<TRequest, TResponse>(
        this IEndpointRouteBuilder endpoints, string method, Func<TRequest, CallContext, Task<TResponse>> handler)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(handler);
        endpoints.MapPost(method, (RequestDelegate)(http => ServerCalls.RunAsync(http, async ctx =>
        {
            var request = await ServerCalls.ReadSingleAsync<TRequest>(ctx);
            var response = await handler(request, ctx);
            await ServerCalls.WriteAsync(ctx, response, ctx.CancellationToken);
        })));
        return endpoints;
    }

    public static IEndpointRouteBuilder MapServerStreaming<TRequest, TResponse>(
        this IEndpointRouteBuilder endpoints, string method, Func<TRequest, IServerStreamWriter<TResponse>, CallContext, Task> handler)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(handler);
        endpoints.MapPost(method, (RequestDelegate)(http => ServerCalls.RunAsync(http, async ctx =>
        {
            var request = await ServerCalls.ReadSingleAsync<TRequest>(ctx);
            await handler(request, new ServerStreamWriter<TResponse>(ctx), ctx);
        })));
        return endpoints;
    }

    public static IEndpointRouteBuilder MapClientStreaming<TRequest, TResponse>(
        this IEndpointRouteBuilder endpoints, string method, Func<IAsyncEnumerable<TRequest>, CallContext, Task<TResponse>> handler)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(handler);
        endpoints.MapPost(method, (RequestDelegate)(http => ServerCalls.RunAsync(http, async ctx =>
        {
            var response = await handler(ServerCalls.ReadAllAsync<TRequest>(ctx), ctx);
            await ServerCalls.WriteAsync(ctx, response, ctx.CancellationToken);
        })));
        return endpoints;
    }

    public static IEndpointRouteBuilder MapDuplexStreaming<TRequest, TResponse>(
        this IEndpointRouteBuilder endpoints, string method, Func<IAsyncEnumerable<TRequest>, IServerStreamWriter<TResponse>, CallContext, Task> handler)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(handler);
        endpoints.MapPost(method, (RequestDelegate)(http => ServerCalls.RunAsync(http, async ctx =>
        {
            await http.Response.StartAsync(ctx.CancellationToken); // headers first, so the client can start reading
            await handler(ServerCalls.ReadAllAsync<TRequest>(ctx), new ServerStreamWriter<TResponse>(ctx), ctx);
        })));
        return endpoints;
    }

    private static void DeleteStaleSocket(string path)
    {
        // Kestrel's bind fails on an existing path; the caller decided this socket is ours to replace.
        if (File.Exists(path))
        {
            File.Delete(path);
        }
    }
}
