using Google.Protobuf;

namespace Hive.Wire.Internal;

/// <summary>One cached <see cref="MessageParser{T}"/> per message type.</summary>
internal static class Parsers<T>
    where T : IMessage<T>, new()
{
    public static readonly MessageParser<T> Instance = new(static () => new T());
}
