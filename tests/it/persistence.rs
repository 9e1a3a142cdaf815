//! The store under concurrent writers, on a real surrealkv folder.

use reqwest::StatusCode;
use storage::Store;

use crate::app::{PASSWORD, spawn_app_with, test_config};

#[tokio::test]
async fn racing_signups_for_one_name_have_exactly_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("surrealkv://{}", dir.path().join("db").display());
    let store = Store::open(&url, None).await.unwrap();
    let app = spawn_app_with(test_config(), store).await;

    let mut tasks = Vec::new();
    for i in 0..10 {
        let browser = app.browser();
        tasks.push(tokio::spawn(async move {
            let email = format!("racer{i}@example.com");
            browser.signup("racer", &email, PASSWORD).await.status
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let wins = statuses
        .iter()
        .filter(|s| **s == StatusCode::SEE_OTHER)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((wins, conflicts), (1, 9), "{statuses:?}");
    assert_eq!(app.store.count_users().await.unwrap(), 1);

    // The same for one email under different names.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let browser = app.browser();
        tasks.push(tokio::spawn(async move {
            let name = format!("twin{i}");
            browser
                .signup(&name, "twin@example.com", PASSWORD)
                .await
                .status
        }));
    }
    let mut wins = 0;
    for task in tasks {
        let status = task.await.unwrap();
        assert!(
            status == StatusCode::SEE_OTHER || status == StatusCode::CONFLICT,
            "{status}"
        );
        wins += usize::from(status == StatusCode::SEE_OTHER);
    }
    assert_eq!(wins, 1);
    assert_eq!(app.store.count_users().await.unwrap(), 2);
}
