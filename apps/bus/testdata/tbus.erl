%% tbus: the Erlang end of apps/bus's interop test (erlang_test.go).
%%
%% main(emul) starts OTP's own pg scope ebus_ps_pg and a bus server that
%% does what erlbus 0.3's ebus_ps_pg2_server does: registered ebus_ps,
%% joined to pg group ebus_ps, fans {forward_to_local, From, PoolSize,
%% Topic, Msg} out to its local subscribers, and publishes by sending that
%% message to every remote member of the group. main(erlbus) uses a real
%% erlbus 0.3 application (ebus) instead, when its beams are on the path.
%%
%% The test drives it over stdin, one term per command; each answer is one
%% line on stdout, "Tag Term" written with ~w. The driver process is also
%% the subscriber.
-module(tbus).
-export([main/1]).

main([Mode]) -> main(Mode);
main(Mode) ->
    ok = start(Mode),
    answer(ready, Mode),
    loop(Mode).

start(emul) ->
    {ok, _} = pg:start(ebus_ps_pg),
    Self = self(),
    spawn(fun() -> server_init(Self) end),
    receive server_ready -> ok after 5000 -> error(server_timeout) end;
start(erlbus) ->
    {ok, _} = application:ensure_all_started(ebus),
    ok.

loop(Mode) ->
    case io:read('') of
        {ok, Cmd} ->
            command(Mode, Cmd),
            loop(Mode);
        eof ->
            halt(0);
        {error, E} ->
            answer(error, E),
            loop(Mode)
    end.

command(_, {connect, Node}) ->
    answer(connect, net_kernel:connect_node(Node));
command(_, {members}) ->
    answer(members, lists:sort([node(P) || P <- pg:get_members(ebus_ps_pg, ebus_ps)]));
command(emul, {sub, Topic}) ->
    true = ets:insert(tbus_subs, {Topic, self()}),
    answer(sub, ok);
command(erlbus, {sub, Topic}) ->
    answer(sub, ebus:sub(self(), Topic));
command(emul, {pub, Topic, Msg}) ->
    answer(pub, publish(Topic, Msg));
command(erlbus, {pub, Topic, Msg}) ->
    answer(pub, ebus:pub(Topic, Msg));
command(_, {recv, Timeout}) ->
    receive M -> answer(recv, M) after Timeout -> answer(recv, timeout) end;
command(_, {quit}) ->
    halt(0);
command(_, Other) ->
    answer(unknown, Other).

answer(Tag, Term) ->
    io:format("~w ~w~n", [Tag, Term]).

%% The erlbus-like server.

server_init(Parent) ->
    true = register(ebus_ps, self()),
    tbus_subs = ets:new(tbus_subs, [bag, public, named_table]),
    ok = pg:join(ebus_ps_pg, ebus_ps, self()),
    Parent ! server_ready,
    server_loop().

server_loop() ->
    receive
        {forward_to_local, From, _PoolSize, Topic, Msg} ->
            deliver(From, Topic, Msg);
        {'$gen_call', From, _Request} ->
            gen:reply(From, ok);
        _ ->
            ignore
    end,
    server_loop().

deliver(From, Topic, Msg) ->
    [P ! Msg || {_, P} <- ets:lookup(tbus_subs, Topic), P =/= From],
    ok.

publish(Topic, Msg) ->
    lists:foreach(
      fun(P) when node(P) =:= node() -> deliver(none, Topic, Msg);
         (P) -> P ! {forward_to_local, none, 1, Topic, Msg}
      end,
      pg:get_members(ebus_ps_pg, ebus_ps)).
