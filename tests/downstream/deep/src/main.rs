//! The app's example through a library of the user's.

fn main() -> Result<(), downstream_lib::Error> {
    let mut data: Vec<f64> = (0..1000).map(|i| (i % 10) as f64 / 10.0).collect();
    for i in [7, 113, 835] {
        data[i] += 97.0;
    }
    let indices = downstream_lib::outliers(&data)?;
    for path in downstream_lib::libpython_mapped() {
        println!("libpython: {path}");
    }
    println!("outliers at: {indices:?}");
    Ok(())
}
