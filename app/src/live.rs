//! Follows a server-sent event stream of work going on in the background (an upload
//! being read, an assessment, a run), the one way every live page does it: `progress`
//! events are parsed and handed over, `settled` events announce an end, each
//! (re)connection says that events may have been missed; the stream closes when the page goes away
//! or a handler says the work is over.

/// What a handler tells the follower after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Listen,
    /// The work is over: the stream is closed.
    Close,
}

/// Follows `url`: each `progress` event's JSON, parsed as `T`, goes to `progress`;
/// each `settled` event's data to `settled`; `opened` runs each time the connection
/// is made (the first time included): events before it were missed.
#[cfg(feature = "hydrate")]
pub fn follow<T>(
    url: &str,
    progress: impl Fn(T) -> Next + 'static,
    settled: impl Fn(String) -> Next + 'static,
    opened: impl Fn() + 'static,
) where
    T: serde::de::DeserializeOwned + 'static,
{
    use leptos::prelude::on_cleanup;
    use wasm_bindgen::{JsCast, closure::Closure};
    let Ok(source) = web_sys::EventSource::new(url) else {
        return;
    };
    let closing = source.clone();
    let on_progress =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            let parsed = e
                .data()
                .as_string()
                .and_then(|text| serde_json::from_str::<T>(&text).ok());
            if let Some(value) = parsed
                && progress(value) == Next::Close
            {
                closing.close();
            }
        });
    let closing = source.clone();
    let on_settled =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            if settled(e.data().as_string().unwrap_or_default()) == Next::Close {
                closing.close();
            }
        });
    let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| opened());
    let _ =
        source.add_event_listener_with_callback("progress", on_progress.as_ref().unchecked_ref());
    let _ = source.add_event_listener_with_callback("settled", on_settled.as_ref().unchecked_ref());
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    let held = send_wrapper::SendWrapper::new((source, on_progress, on_settled, on_open));
    on_cleanup(move || {
        let (source, ..) = &*held;
        source.close();
    });
}
