//! Entry point of the wasm app: mount [`fleetview_web::app::App`] on the page's body.

fn main() {
    yew::Renderer::<fleetview_web::app::App>::new().render();
}
